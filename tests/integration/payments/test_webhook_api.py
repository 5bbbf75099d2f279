"""POST /webhooks/stripe: Stripe's events, signed as Stripe signs them, about payments
made at the session's local Stripe."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.error import HTTPError

import pytest
import stripe
from flask.testing import FlaskClient
from sqlalchemy import text

from config.bootstrap import Application
from config.settings import Settings
from kernel.command_bus import CommandBus
from kernel.errors import NoHandler
from kernel.messages import Event
from kernel.results import Success
from payments.commands import RefundPayment
from payments.domain import REFUNDED_AT_PROVIDER
from payments.events import PaymentFailed, PaymentRefunded, PaymentSucceeded
from payments.inbox import PaymentInbox, Receipt, command_id
from payments.provider_calls import PROVIDER_ACTOR
from payments.webhooks import ProviderEvent
from tests.integration.payments.conftest import (
    EUR_10,
    WEBHOOK_URL,
    intents_of,
    paid,
    payment_events,
    payment_history,
    post_webhook,
    request_payment,
    settle,
)
from tests.support.payments import authenticate, payment_intent, stripe_event, stripe_signature


@pytest.fixture
def secret(settings: Settings) -> str:
    assert settings.stripe_webhook_secret is not None
    return settings.stripe_webhook_secret


def signature(body: bytes, secret: str, *, at: float | None = None) -> str:
    return stripe_signature(secret, body, None if at is None else int(at))


def customer_authenticates(settings: Settings, intent_id: str) -> dict[str, Any]:
    """The customer completes 3-D Secure; the intent as it stands then (the charge that
    follows may be declined: the local Stripe then answers the customer 402)."""
    try:
        authenticate(settings, intent_id)
    except HTTPError as declined:
        assert declined.code == 402
    return payment_intent(settings, intent_id)


def inbox(application: Application) -> dict[str, Any]:
    with application.engine.connect() as conn:
        rows = conn.execute(text("SELECT provider_event_id, payload FROM payment_webhook_inbox"))
        return {event_id: payload for event_id, payload in rows}


def deliver(client: FlaskClient, body: bytes, secret: str) -> dict[str, Any]:
    """Post the event signed as Stripe does; its receipt (which must be a 200)."""
    response = post_webhook(client, body, signature(body, secret))
    assert response.status_code == 200, response.get_json()
    receipt: dict[str, Any] = response.get_json()
    return receipt


def waiting_on_3d_secure(
    application: Application, stripe_client: stripe.StripeClient, order_id: str, card: str
) -> str:
    """The order's payment, pending at the provider until the customer authenticates;
    its PaymentIntent's id."""
    request_payment(application, order_id, card)
    assert settle(application, order_id) == "pending"
    (intent,) = intents_of(stripe_client, order_id)
    return str(intent["id"])


def charge_of(stripe_client: stripe.StripeClient, intent_id: str) -> dict[str, Any]:
    """The intent's charge, as Stripe's JSON."""
    latest = stripe_client.v1.payment_intents.retrieve(intent_id).latest_charge
    assert isinstance(latest, str)
    return stripe_client.v1.charges.retrieve(latest).to_dict()


# --- charges -------------------------------------------------------------------------


def test_a_succeeded_intent_completes_the_payment_pending_on_3d_secure(
    client: FlaskClient,
    application: Application,
    stripe_client: stripe.StripeClient,
    settings: Settings,
    secret: str,
    order_id: str,
) -> None:
    intent_id = waiting_on_3d_secure(
        application, stripe_client, order_id, "pm_card_authenticationRequired"
    )
    intent = customer_authenticates(settings, intent_id)
    body = stripe_event("payment_intent.succeeded", intent, "evt_3ds_done")

    receipt = deliver(client, body, secret)

    assert receipt["status"] == "accepted"
    assert receipt["consistency_token"]
    assert payment_events(application, order_id)[2:] == [
        PaymentSucceeded(order_id, EUR_10, intent_id, "evt_3ds_done", EUR_10)
    ]
    assert inbox(application) == {"evt_3ds_done": json.loads(body)}
    assert settle(application, order_id) == "nothing due: succeeded"  # the job's look-up


def test_a_redelivered_event_is_a_duplicate_and_changes_nothing(
    client: FlaskClient,
    application: Application,
    stripe_client: stripe.StripeClient,
    settings: Settings,
    secret: str,
    order_id: str,
) -> None:
    intent_id = waiting_on_3d_secure(
        application, stripe_client, order_id, "pm_card_authenticationRequired"
    )
    intent = customer_authenticates(settings, intent_id)
    body = stripe_event("payment_intent.succeeded", intent, "evt_1")
    deliver(client, body, secret)

    again = deliver(client, body, secret)

    assert again == {"status": "duplicate"}
    assert len(payment_events(application, order_id)) == 3
    assert list(inbox(application)) == ["evt_1"]


def test_the_outcome_carries_the_provider_as_actor_and_the_event_as_cause(
    client: FlaskClient,
    application: Application,
    stripe_client: stripe.StripeClient,
    settings: Settings,
    secret: str,
    order_id: str,
) -> None:
    intent_id = waiting_on_3d_secure(
        application, stripe_client, order_id, "pm_card_authenticationRequired"
    )
    intent = customer_authenticates(settings, intent_id)

    deliver(client, stripe_event("payment_intent.succeeded", intent, "evt_7"), secret)

    succeeded = payment_history(application, order_id)[-1]
    assert succeeded.metadata.actor == PROVIDER_ACTOR
    assert succeeded.metadata.causation_id == command_id(ProviderEvent("evt_7", "", {}))


def test_a_charge_declined_after_3d_secure_fails_the_payment_with_the_decline_code(
    client: FlaskClient,
    application: Application,
    stripe_client: stripe.StripeClient,
    settings: Settings,
    secret: str,
    order_id: str,
) -> None:
    intent_id = waiting_on_3d_secure(
        application,
        stripe_client,
        order_id,
        "pm_card_authenticationRequiredChargeDeclinedInsufficientFunds",
    )
    intent = customer_authenticates(settings, intent_id)
    assert intent["last_payment_error"]["decline_code"] == "insufficient_funds"
    body = stripe_event("payment_intent.payment_failed", intent, "evt_2")

    receipt = deliver(client, body, secret)

    assert receipt["status"] == "accepted"
    assert payment_events(application, order_id)[2:] == [
        PaymentFailed(order_id, EUR_10, "insufficient_funds", "evt_2")
    ]


def test_the_events_of_a_payment_the_job_settled_already_change_nothing(
    client: FlaskClient,
    application: Application,
    stripe_client: stripe.StripeClient,
    secret: str,
    order_id: str,
) -> None:
    paid(application, order_id)
    (intent,) = intents_of(stripe_client, order_id)

    deliver(client, stripe_event("payment_intent.succeeded", intent), secret)

    assert len(payment_events(application, order_id)) == 2


def test_a_failure_about_an_earlier_attempt_is_recorded_and_ignored(
    client: FlaskClient,
    application: Application,
    stripe_client: stripe.StripeClient,
    secret: str,
    order_id: str,
) -> None:
    request_payment(application, order_id, "pm_card_visa_chargeDeclined")
    settle(application, order_id)
    request_payment(application, order_id, "pm_card_visa")  # attempt 2, not yet made
    (declined,) = intents_of(stripe_client, order_id)

    receipt = deliver(client, stripe_event("payment_intent.payment_failed", declined), secret)

    assert (receipt["status"], receipt["reason"]) == ("ignored", "payment_attempt_over")
    assert len(payment_events(application, order_id)) == 3
    assert len(inbox(application)) == 1


# --- refunds -------------------------------------------------------------------------


def test_a_refund_made_in_stripes_dashboard_refunds_the_payment(
    client: FlaskClient,
    application: Application,
    stripe_client: stripe.StripeClient,
    secret: str,
    order_id: str,
) -> None:
    charged = paid(application, order_id)
    made = stripe_client.v1.refunds.create(params={"payment_intent": charged.provider_reference})
    charge = charge_of(stripe_client, charged.provider_reference)
    assert charge["refunded"] is True

    receipt = deliver(client, stripe_event("charge.refunded", charge, "evt_r"), secret)

    assert receipt["status"] == "accepted"
    assert payment_events(application, order_id)[2:] == [
        PaymentRefunded(order_id, EUR_10, REFUNDED_AT_PROVIDER, made.id, "", True, EUR_10)
    ]
    assert settle(application, order_id) == "nothing due: refunded"


def test_the_refund_the_shop_asked_for_is_recorded_with_its_reason_when_the_event_is_first(
    client: FlaskClient,
    application: Application,
    stripe_client: stripe.StripeClient,
    secret: str,
    order_id: str,
) -> None:
    charged = paid(application, order_id)
    result = application.bus.dispatch(RefundPayment(order_id, "damaged in transit"))
    assert isinstance(result, Success)
    made = stripe_client.v1.refunds.create(params={"payment_intent": charged.provider_reference})
    charge = charge_of(stripe_client, charged.provider_reference)

    deliver(client, stripe_event("charge.refunded", charge), secret)

    assert payment_events(application, order_id)[-1] == PaymentRefunded(
        order_id, EUR_10, "damaged in transit", made.id, "", True, EUR_10
    )
    assert settle(application, order_id) == "nothing due: refunded"


def test_a_partial_refund_is_recorded_and_ignored(
    client: FlaskClient,
    application: Application,
    stripe_client: stripe.StripeClient,
    secret: str,
    order_id: str,
) -> None:
    charged = paid(application, order_id)
    stripe_client.v1.refunds.create(
        params={"payment_intent": charged.provider_reference, "amount": 400}
    )
    charge = charge_of(stripe_client, charged.provider_reference)
    assert (charge["refunded"], charge["amount_refunded"]) == (False, 400)

    receipt = deliver(client, stripe_event("charge.refunded", charge, "evt_p"), secret)

    assert (receipt["status"], receipt["reason"]) == ("ignored", "partial_refund")
    assert len(payment_events(application, order_id)) == 2
    assert list(inbox(application)) == ["evt_p"]


# --- events that ask nothing of the shop ----------------------------------------------


def foreign_intent(**metadata: str) -> dict[str, Any]:
    return {
        "id": "pi_foreign",
        "object": "payment_intent",
        "amount": 1000,
        "currency": "eur",
        "status": "succeeded",
        "amount_received": 1000,
        "metadata": metadata,
    }


@pytest.mark.parametrize(
    ("type_", "about", "reason"),
    [
        (
            "payment_intent.succeeded",
            foreign_intent(order_id="o-nobody", attempt="1"),
            "not_found",
        ),
        ("payment_intent.succeeded", foreign_intent(), "not_an_order_payment"),
        (
            "charge.refunded",
            {"id": "ch_x", "object": "charge", "payment_intent": "pi_foreign", "refunded": True},
            "not_an_order_payment",
        ),
        ("customer.created", {"id": "cus_1", "object": "customer"}, "unhandled_event_type"),
    ],
)
def test_an_event_about_nothing_of_the_shops_is_recorded_and_ignored(
    client: FlaskClient,
    application: Application,
    secret: str,
    type_: str,
    about: dict[str, Any],
    reason: str,
) -> None:
    body = stripe_event(type_, about, "evt_x")

    receipt = deliver(client, body, secret)

    assert (receipt["status"], receipt["reason"]) == ("ignored", reason)
    assert receipt["detail"]
    assert list(inbox(application)) == ["evt_x"]
    assert payment_events(application, "o-nobody") == []
    assert deliver(client, body, secret) == {"status": "duplicate"}


# --- notifications that are refused ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "header"),
    [
        pytest.param(None, lambda body, secret: signature(body, "whsec_forged"), id="forged"),
        pytest.param(
            None, lambda body, secret: signature(body, secret, at=time.time() - 400), id="stale"
        ),
        pytest.param(None, lambda body, secret: None, id="missing"),
        pytest.param(None, lambda body, secret: "t=1,v1=deadbeef", id="malformed"),
        pytest.param(
            None,
            lambda body, secret: signature(body.replace(b"succeeded", b"failed"), secret),
            id="other-body",
        ),
        pytest.param(b"{not json", None, id="not-json"),
        pytest.param(b"[]", None, id="array"),
        pytest.param(b'{"id": "evt_1", "type": "payment_intent.succeeded"}', None, id="no-data"),
        pytest.param(b"\xff\xfe", None, id="not-utf8"),
    ],
)
def test_a_notification_that_is_not_a_verified_event_is_a_400_and_records_nothing(
    client: FlaskClient,
    application: Application,
    stripe_client: stripe.StripeClient,
    settings: Settings,
    secret: str,
    order_id: str,
    body: bytes | None,
    header: Any,
) -> None:
    intent_id = waiting_on_3d_secure(
        application, stripe_client, order_id, "pm_card_authenticationRequired"
    )
    intent = customer_authenticates(settings, intent_id)
    sent = body if body is not None else stripe_event("payment_intent.succeeded", intent)
    value = signature(sent, secret) if header is None else header(sent, secret)

    response = post_webhook(client, sent, value)

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == 400
    assert inbox(application) == {}
    assert len(payment_events(application, order_id)) == 2  # requested, pending


def test_the_body_is_read_whatever_content_type_stripe_labels_it_with(
    client: FlaskClient, application: Application, secret: str
) -> None:
    body = stripe_event("customer.created", {"id": "cus_1"}, "evt_ct")

    response = post_webhook(
        client, body, signature(body, secret), content_type="application/json; charset=utf-8"
    )

    assert response.status_code == 200
    assert list(inbox(application)) == ["evt_ct"]


def test_the_stale_signature_window_is_the_webhook_tolerance(
    client: FlaskClient, application: Application, settings: Settings, secret: str
) -> None:
    body = stripe_event("customer.created", {"id": "cus_1"}, "evt_edge")
    fresh_enough = time.time() - settings.webhook_tolerance + 30

    response = post_webhook(client, body, signature(body, secret, at=fresh_enough))

    assert response.status_code == 200
    assert list(inbox(application)) == ["evt_edge"]


# --- the inbox ----------------------------------------------------------------------


def test_concurrent_deliveries_of_one_event_are_acted_on_once(
    application: Application,
    stripe_client: stripe.StripeClient,
    settings: Settings,
    order_id: str,
) -> None:
    intent_id = waiting_on_3d_secure(
        application, stripe_client, order_id, "pm_card_authenticationRequired"
    )
    intent = customer_authenticates(settings, intent_id)
    event = ProviderEvent("evt_1", "payment_intent.succeeded", intent)
    barrier = threading.Barrier(4)
    receipts: list[Receipt] = []

    def receive() -> None:
        barrier.wait()
        receipts.append(application.payment_inbox.receive(event, {"id": "evt_1"}))

    threads = [threading.Thread(target=receive) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(receipt.status for receipt in receipts) == ["accepted"] + ["duplicate"] * 3
    succeeded: list[Event] = [
        e for e in payment_events(application, order_id) if isinstance(e, PaymentSucceeded)
    ]
    assert len(succeeded) == 1


def test_the_inbox_row_and_the_outcome_commit_together(
    application: Application,
    stripe_client: stripe.StripeClient,
    settings: Settings,
    order_id: str,
) -> None:
    intent_id = waiting_on_3d_secure(
        application, stripe_client, order_id, "pm_card_authenticationRequired"
    )
    intent = customer_authenticates(settings, intent_id)
    event = ProviderEvent("evt_1", "payment_intent.succeeded", intent)
    without_handlers = PaymentInbox(CommandBus(application.engine, application.store))

    with pytest.raises(NoHandler):
        without_handlers.receive(event, {"id": "evt_1"})

    assert inbox(application) == {}
    assert application.payment_inbox.receive(event, {"id": "evt_1"}).status == "accepted"


def test_the_webhook_is_documented(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()

    operation = spec["paths"][WEBHOOK_URL]["post"]
    assert {"200", "400"} <= set(operation["responses"])
    assert "application/problem+json" in operation["responses"]["400"]["content"]
    assert "security" not in operation
    (parameter,) = operation["parameters"]
    assert (parameter["in"], parameter["name"], parameter["required"]) == (
        "header",
        "Stripe-Signature",
        True,
    )
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"id", "type", "data"}
    assert "/webhooks/payments" not in spec["paths"]
