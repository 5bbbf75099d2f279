"""The local Stripe API (localdev.stripe_server) behaves as Stripe documents it where the
shop's payments depend on it. The server runs as ``start_stripe`` runs it, and is driven
through Stripe's official SDK; its webhooks go to a signature-checking endpoint here."""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import stripe

from localdev import stripe_server
from localdev.servers import EmbeddedServer, start_stripe
from localdev.stripe_server import KEY_LIFETIME, IdempotencyKeys, SavedResponse, StateFile
from localdev.stripe_webhooks import register_webhook

API_KEY = "sk_test_localdev_tests"
WEBHOOK_SECRET = "whsec_localdev_tests"
Event = dict[str, Any]


class WebhookSink:
    """An HTTP endpoint keeping the events it is sent, once their signature checks out."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.changed = threading.Condition()
        sink = self

        class Receive(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = self.rfile.read(int(self.headers["Content-Length"]))
                signature = self.headers["Stripe-Signature"]
                stripe.WebhookSignature.verify_header(payload.decode(), signature, WEBHOOK_SECRET)
                with sink.changed:
                    sink.events.append(json.loads(payload))
                    sink.changed.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Receive)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/webhooks"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def wait_for(
        self, kind: str, object_id: str, where: Callable[[Any], bool] = lambda _: True
    ) -> Any:
        """The ``data.object`` of the first ``kind`` event about ``object_id`` (and
        ``where``); localstripe sends an event a second after it happened."""
        deadline = time.monotonic() + 10
        with self.changed:
            while True:
                for event in self.events:
                    found = event["data"]["object"]
                    if event["type"] == kind and found["id"] == object_id and where(found):
                        return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {kind} event about {object_id} within 10s")
                self.changed.wait(left)

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    started = start_stripe(tmp_path_factory.mktemp("stripe-server"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def client(server: EmbeddedServer) -> stripe.StripeClient:
    return sdk(server.url)


@pytest.fixture(scope="module")
def webhooks(server: EmbeddedServer) -> Iterator[WebhookSink]:
    sink = WebhookSink()
    register_webhook(server.url, sink.url, WEBHOOK_SECRET, webhook_id="tests")
    yield sink
    sink.close()


def sdk(url: str) -> stripe.StripeClient:
    return stripe.StripeClient(api_key=API_KEY, base_addresses={"api": url}, max_network_retries=0)


def new_key() -> str:
    return str(uuid.uuid4())


def pay(
    client: stripe.StripeClient,
    payment_method: str = "pm_card_visa",
    *,
    amount: int = 1500,
    key: str | None = None,
    case: str = "",
    manual: bool = False,
) -> stripe.PaymentIntent:
    """Create and confirm a PaymentIntent in one call, as the shop's gateway does."""
    return client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "eur",
            "payment_method": payment_method,
            "confirm": True,
            "capture_method": "manual" if manual else "automatic",
            "metadata": {"case": case},
        },
        options={"idempotency_key": key or new_key()},
    )


def replayed(response: stripe.StripeResponse | None) -> str | None:
    assert response is not None
    header: str | None = response.headers.get("Idempotent-Replayed")
    return header


def declined(
    client: stripe.StripeClient, payment_method: str, *, key: str | None = None
) -> stripe.CardError:
    with pytest.raises(stripe.CardError) as raised:
        pay(client, payment_method, key=key)
    return raised.value


def intent_of(error: stripe.CardError) -> str:
    assert error.error is not None and error.error.payment_intent is not None
    return error.error.payment_intent.id


# --- Idempotent requests ---------------------------------------------------------------


def test_a_retry_with_the_same_key_gets_the_first_response_and_changes_nothing(
    client: stripe.StripeClient,
) -> None:
    key, case = new_key(), new_key()

    first = pay(client, key=key, case=case)
    again = pay(client, key=key, case=case)

    assert again.id == first.id
    assert again.status == first.status == "succeeded"
    assert replayed(first.last_response) is None
    assert replayed(again.last_response) == "true"
    listed = client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
    assert [intent.id for intent in listed if intent.metadata.to_dict() == {"case": case}] == [
        first.id
    ]


def test_a_key_reused_with_other_parameters_or_elsewhere_is_an_idempotency_error(
    client: stripe.StripeClient,
) -> None:
    key = new_key()
    intent = pay(client, amount=1000, key=key)

    with pytest.raises(stripe.IdempotencyError) as other_parameters:
        pay(client, amount=1001, key=key)
    with pytest.raises(stripe.IdempotencyError) as other_endpoint:
        client.v1.refunds.create(
            params={"payment_intent": intent.id}, options={"idempotency_key": key}
        )

    for refused in (other_parameters.value, other_endpoint.value):
        assert refused.http_status == 400
        assert refused.error is not None and refused.error.type == "idempotency_error"
    assert client.v1.payment_intents.retrieve(intent.id).amount_received == 1000


def test_a_declined_payment_is_replayed_as_declined(client: stripe.StripeClient) -> None:
    key = new_key()

    first = declined(client, "pm_card_visa_chargeDeclined", key=key)
    again = declined(client, "pm_card_visa_chargeDeclined", key=key)

    assert intent_of(again) == intent_of(first)
    assert again.headers is not None and again.headers.get("Idempotent-Replayed") == "true"


def test_a_request_that_failed_validation_is_not_saved(client: stripe.StripeClient) -> None:
    key = new_key()

    with pytest.raises(stripe.InvalidRequestError):
        pay(client, amount=0, key=key)
    intent = pay(client, amount=500, key=key)

    assert intent.status == "succeeded"
    assert replayed(intent.last_response) is None


def test_a_retry_while_the_first_request_is_in_progress_is_a_conflict(
    server: EmbeddedServer, client: stripe.StripeClient
) -> None:
    key = new_key()
    body = b"amount=700&currency=eur&payment_method=pm_card_visa&confirm=true"
    address = urlsplit(server.url)
    first = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    first.putrequest("POST", "/v1/payment_intents")
    for name, value in [
        ("Authorization", f"Bearer {API_KEY}"),
        ("Idempotency-Key", key),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", str(len(body))),
    ]:
        first.putheader(name, value)
    first.endheaders(body[:10])  # the rest of the body is still on its way
    time.sleep(0.3)
    same: stripe.params.PaymentIntentCreateParams = {
        "amount": 700,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "confirm": True,
    }

    with pytest.raises(stripe.APIError) as conflict:
        client.v1.payment_intents.create(params=same, options={"idempotency_key": key})
    first.send(body[10:])
    answer = first.getresponse()
    created = json.loads(answer.read())
    first.close()
    retried = client.v1.payment_intents.create(params=same, options={"idempotency_key": key})

    assert conflict.value.http_status == 409
    assert conflict.value.error is not None
    assert conflict.value.error.type == "idempotency_error"
    assert conflict.value.error.code == "idempotency_key_in_use"
    assert answer.status == 200 and created["status"] == "succeeded"
    assert retried.id == created["id"]
    assert replayed(retried.last_response) == "true"


def test_keys_are_forgotten_after_24_hours() -> None:
    now = 1_000_000.0
    keys = IdempotencyKeys(clock=lambda: now)
    scope = (API_KEY, "key")
    keys.put(scope, SavedResponse("POST /v1/payment_intents", "params", 200, b"", now))

    now += KEY_LIFETIME - 1
    assert keys.get(scope) is not None
    now += 1
    keys.prune()
    assert keys.saved == {}
    assert keys.get(scope) is None


def test_objects_and_keys_survive_a_restart_in_the_state_file(tmp_path: Path) -> None:
    key = new_key()
    server = start_stripe(tmp_path)
    try:
        first = pay(sdk(server.url), key=key)
    finally:
        server.stop()
    assert (tmp_path / "stripe" / "state.pickle").is_file()

    restarted = start_stripe(tmp_path)
    try:
        client = sdk(restarted.url)
        again = pay(client, key=key)
        kept = client.v1.payment_intents.retrieve(first.id)
    finally:
        restarted.stop()

    assert restarted.url == server.url  # the port is kept too
    assert again.id == first.id and replayed(again.last_response) == "true"
    assert kept.status == "succeeded" and kept.amount_received == first.amount


def test_the_state_is_written_at_most_once_per_interval_and_only_after_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[float] = []
    monkeypatch.setattr(
        stripe_server, "write_atomically", lambda path, data: writes.append(time.monotonic())
    )
    state = StateFile(tmp_path / "state.pickle", IdempotencyKeys())

    async def change_for_a_second_then_stop() -> float:
        saving = asyncio.create_task(state.save_while_changing(interval=0.2))
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            stripe_server._changes.dirty = True  # as each store write marks it
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.6)
        saving.cancel()
        return end

    last_change = asyncio.run(change_for_a_second_then_stop())

    assert 3 <= len(writes) <= 6
    assert all(later - earlier >= 0.19 for earlier, later in itertools.pairwise(writes))
    assert writes[-1] <= last_change + 0.3  # nothing changed since: nothing written


def test_the_state_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "state.pickle"
    stripe_server.write_atomically(path, b"one")
    stripe_server.write_atomically(path, b"two")

    assert path.read_bytes() == b"two"
    assert [entry.name for entry in tmp_path.iterdir()] == ["state.pickle"]


# --- Test payment methods --------------------------------------------------------------


@pytest.mark.parametrize(
    ("payment_method", "code", "decline_code"),
    [
        ("pm_card_visa_chargeDeclined", "card_declined", "generic_decline"),
        ("pm_card_visa_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
        ("pm_card_chargeDeclinedLostCard", "card_declined", "lost_card"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
        ("pm_card_chargeCustomerFail", "card_declined", "generic_decline"),
    ],
)
def test_declining_test_cards_fail_the_payment_as_stripe_does(
    client: stripe.StripeClient,
    webhooks: WebhookSink,
    payment_method: str,
    code: str,
    decline_code: str,
) -> None:
    error = declined(client, payment_method)

    assert error.http_status == 402
    assert error.code == code
    assert error.error is not None and error.error.type == "card_error"
    assert error.error.decline_code == decline_code
    assert error.error.charge is not None and error.error.charge.startswith("ch_")
    intent = client.v1.payment_intents.retrieve(intent_of(error))
    assert intent.status == "requires_payment_method"
    assert intent.amount_received == 0
    assert intent.last_payment_error is not None
    assert intent.last_payment_error.decline_code == decline_code
    failed = webhooks.wait_for("payment_intent.payment_failed", intent.id)
    assert failed["last_payment_error"]["code"] == code
    assert failed["last_payment_error"]["decline_code"] == decline_code


@pytest.mark.parametrize(
    ("number", "decline_code"),
    [("4000000000000002", "generic_decline"), ("4000000000009995", "insufficient_funds")],
)
def test_declining_card_numbers_fail_the_payment(
    client: stripe.StripeClient, number: str, decline_code: str
) -> None:
    card = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )

    error = declined(client, card.id)

    assert error.code == "card_declined"
    assert error.error is not None and error.error.decline_code == decline_code


def test_a_payment_intent_made_with_a_test_payment_method_refers_to_a_real_one(
    client: stripe.StripeClient,
) -> None:
    intent = pay(client, "pm_card_visa")

    assert isinstance(intent.payment_method, str) and intent.payment_method != "pm_card_visa"
    method = client.v1.payment_methods.retrieve(intent.payment_method)
    assert method.id == intent.payment_method
    assert method.card is not None and method.card.last4 == "4242"


def authenticate(client: stripe.StripeClient, intent: stripe.PaymentIntent, success: bool) -> None:
    """The customer's part of 3-D Secure, through localstripe's own endpoint."""
    client.raw_request(
        "post",
        f"/v1/payment_intents/{intent.id}/_authenticate",
        client_secret=intent.client_secret,
        success="true" if success else "false",
    )


@pytest.mark.parametrize(
    "payment_method", ["pm_card_authenticationRequired", "pm_card_threeDSecure2Required"]
)
def test_a_card_requiring_3d_secure_waits_for_the_customer_then_succeeds(
    client: stripe.StripeClient, webhooks: WebhookSink, payment_method: str
) -> None:
    case = new_key()
    intent = pay(client, payment_method, amount=2500, case=case)
    assert intent.status == "requires_action"
    assert intent.next_action is not None and intent.amount_received == 0

    authenticate(client, intent, success=True)

    paid = client.v1.payment_intents.retrieve(intent.id)
    assert paid.status == "succeeded" and paid.amount_received == 2500
    succeeded = webhooks.wait_for("payment_intent.succeeded", intent.id)
    assert succeeded["amount_received"] == 2500
    assert succeeded["metadata"] == {"case": case}


def test_a_failed_3d_secure_fails_the_payment_with_an_event(
    client: stripe.StripeClient, webhooks: WebhookSink
) -> None:
    intent = pay(client, "pm_card_threeDSecure2Required")

    authenticate(client, intent, success=False)

    failed = client.v1.payment_intents.retrieve(intent.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error is not None
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"
    sent = webhooks.wait_for("payment_intent.payment_failed", intent.id)
    assert sent["last_payment_error"]["code"] == "payment_intent_authentication_failure"


def test_canceling_a_payment_intent_sends_an_event(
    client: stripe.StripeClient, webhooks: WebhookSink
) -> None:
    intent = client.v1.payment_intents.create(
        params={"amount": 900, "currency": "eur", "payment_method": "pm_card_visa"}
    )

    canceled = client.v1.payment_intents.cancel(
        intent.id, params={"cancellation_reason": "abandoned"}
    )

    assert canceled.status == "canceled"
    sent = webhooks.wait_for("payment_intent.canceled", intent.id)
    assert sent["status"] == "canceled"
    assert sent["cancellation_reason"] == "abandoned"


# --- Amounts received ------------------------------------------------------------------


def test_amount_received_is_what_the_latest_charge_captured(client: stripe.StripeClient) -> None:
    paid = pay(client, amount=1200)
    held = pay(client, amount=1200, manual=True)
    assert held.status == "requires_capture"

    captured = client.v1.payment_intents.capture(held.id, params={"amount_to_capture": 800})

    assert paid.amount_received == 1200
    assert held.amount_received == 0
    assert captured.status == "succeeded" and captured.amount_received == 800
    assert isinstance(paid.latest_charge, str)  # an id, unless expanded
    charge = client.v1.charges.retrieve(paid.latest_charge)
    assert charge.amount_captured == 1200


# --- Refunds -----------------------------------------------------------------------------


def test_refunds_send_charge_refunded_and_stop_at_what_was_paid(
    client: stripe.StripeClient, webhooks: WebhookSink
) -> None:
    intent = pay(client, amount=2000)
    charge = str(intent.latest_charge)

    part = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 500})
    partly = webhooks.wait_for("charge.refunded", charge, lambda c: c["amount_refunded"] == 500)
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1600})
    rest = client.v1.refunds.create(params={"payment_intent": intent.id})
    whole = webhooks.wait_for("charge.refunded", charge, lambda c: c["refunded"])
    with pytest.raises(stripe.InvalidRequestError) as again_by_intent:
        client.v1.refunds.create(params={"payment_intent": intent.id})
    with pytest.raises(stripe.InvalidRequestError) as again_by_charge:
        client.v1.refunds.create(params={"charge": charge, "amount": 100})

    assert part.amount == 500 and rest.amount == 1500
    assert partly["payment_intent"] == intent.id
    assert (partly["amount"], partly["amount_refunded"], partly["refunded"]) == (2000, 500, False)
    assert (whole["amount_refunded"], whole["refunded"]) == (2000, True)
    assert too_much.value.http_status == 400 and too_much.value.param == "amount"
    for refused in (again_by_intent.value, again_by_charge.value):
        assert refused.http_status == 400 and refused.code == "charge_already_refunded"


def test_registering_a_webhook_the_server_refuses_raises(server: EmbeddedServer) -> None:
    with pytest.raises(RuntimeError, match="HTTP 400"):
        register_webhook(server.url, "ftp://example.invalid", WEBHOOK_SECRET, webhook_id="bad")
