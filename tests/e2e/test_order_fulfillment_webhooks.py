"""Stripe's webhooks end to end: a 3-D Secure payment completed by the customer at the
provider and reported by the provider's `payment_intent.succeeded` webhook confirms the
order; the same signed event delivered again, and concurrently, has one effect; a forged,
tampered, stale or unsigned delivery is refused with a problem and records nothing.

Real processes again (a gunicorn API, one RQ worker, a payments worker, `rq cron`) and the
session's local Stripe, which posts its signed events to the API about a second after they
happen. The payment deadline is 30 s and reconciliation keeps its default 30 s: each test
here finishes within a few seconds, so every outcome is the webhook's (reconciliation is
covered in test_payment_provider_faults.py, the deadline in test_order_fulfillment.py).

To hold a genuine event back, a test points the provider's webhook at a catcher of its
own for a moment (`System.webhook_diverted`): the provider's delivery lands there, body
and signature as sent, and the test delivers it to the API itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import pytest

from config.bootstrap import Application
from config.settings import Settings
from tests.e2e.fulfillment_support import (
    CARD_3DS,
    PROVIDER_ACTOR,
    Delivery,
    Storefront,
    System,
    WebhookCatcher,
    event_count,
    events_of,
    inbox,
    running_system,
    saga_triggers,
    signature,
    types_of,
    wait_for_inbox,
)
from tests.support.api_client import Customer, Reply

PAYMENT_TIMEOUT = 30.0
CONCURRENT_DELIVERIES = 8  # the API serves 2 gunicorn workers x 4 threads


@pytest.fixture(scope="module")
def system(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    logs = tmp_path_factory.mktemp("fulfillment-webhooks")
    with running_system(settings, logs, workers=1, payment_timeout=PAYMENT_TIMEOUT) as running:
        yield running


def test_a_3d_secure_payment_is_confirmed_by_the_providers_webhook(
    shop: Storefront, application: Application
) -> None:
    shop.add_product("MUG-1", stock=10)
    ada = shop.register("ada@example.com")

    order_id = shop.place(ada, {"MUG-1": 2}, CARD_3DS)

    shop.wait_for_saga(order_id, state="in_progress", step="paying", payment="pending")
    pending = shop.wait_for_order(order_id, "pending", ["PaymentPending"])
    intent_id = pending["order"]["payment"]["reference"]
    intent = shop.provider.intent(intent_id)
    assert intent["status"] == "requires_action"
    assert intent["metadata"] == {"order_id": order_id, "attempt": "1"}
    assert inbox(application.engine) == []  # nothing has happened at the provider yet
    # What the shop hands the customer's browser for Stripe.js.
    payment = shop.payment(ada, order_id)
    assert payment["status"] == "pending"
    assert payment["amount"] == {"amount": 2999, "currency": "EUR"}
    assert payment["action"]["payment_intent"] == intent_id
    assert payment["action"]["client_secret"] == intent["client_secret"]

    # The customer completes 3-D Secure at the provider (Stripe.js, in a browser).
    assert shop.complete_3d_secure(ada, order_id) == intent_id

    saga = shop.wait_for_saga(
        order_id,
        state="completed",
        step="awaiting_shipment",
        reservation="reserved",
        payment="succeeded",
    )
    found = shop.wait_for_order(order_id, "confirmed", ["OrderConfirmed"])
    history = found["history"]
    assert types_of(history) == [
        "OrderPlaced",
        "StockReserved",
        "InventoryReserved",
        "PaymentRequested",
        "PaymentPending",
        "PaymentSucceeded",
        "OrderConfirmed",
    ]
    assert history[5]["actor"] == PROVIDER_ACTOR
    assert saga_triggers(saga) == [
        ("OrderPlaced", ["ReserveInventory ok"]),
        ("InventoryReserved", ["ProcessPayment ok"]),
        ("PaymentPending", []),
        ("PaymentSucceeded", ["ConfirmOrder ok"]),
        ("OrderConfirmed", []),
    ]
    # The webhook brought it: its inbox row, and the event id on PaymentSucceeded.
    received = wait_for_inbox(application.engine, "payment_intent.succeeded", intent_id)
    assert received.provider_event_id.startswith("evt_")
    assert received.payload["data"]["object"]["metadata"]["order_id"] == order_id
    (paid,) = events_of(application.engine, "PaymentSucceeded", order_id)
    assert paid["provider_reference"] == intent_id
    assert paid["provider_event_id"] == received.provider_event_id
    assert paid["amount_captured"] == found["order"]["total"] == {"amount": 2999, "currency": "EUR"}
    intent = shop.provider.intent(intent_id)
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 2999)
    assert [row.provider_event_id for row in inbox(application.engine)] == [
        received.provider_event_id
    ]
    events = event_count(application.engine)

    # Signed events that ask nothing of the shop now are acknowledged, kept, and ignored:
    # a type it does not handle, and a failure about a charge that has succeeded.
    secret = shop.provider.webhook_secret
    for event_type, event_id, reason in (
        ("payment_intent.created", "evt_created_1", "unhandled_event_type"),
        ("payment_intent.payment_failed", "evt_failed_1", "payment_settled"),
    ):
        body = _event(event_id, event_type, intent)
        reply = shop.deliver(body, signature(secret, body))
        assert (reply.status, reply.body["status"]) == (200, "ignored"), reply.body
        assert reply.body["reason"] == reason
    assert len(inbox(application.engine)) == 3
    assert event_count(application.engine) == events
    shop.wait_for_order(order_id, "confirmed")
    assert shop.payment(ada, order_id) == {
        "status": "succeeded",
        "amount": {"amount": 2999, "currency": "EUR"},
        "action": None,
    }


def test_the_same_signed_event_delivered_again_and_concurrently_has_one_effect(
    shop: Storefront, system: System, application: Application
) -> None:
    shopper, order_id = _pending_3d_secure_order(shop)
    # The customer authenticates while the provider's webhook is pointed elsewhere: the
    # genuine signed event is held back, to be delivered by the test.
    with system.webhook_diverted(WebhookCatcher()) as catcher:
        intent_id = shop.complete_3d_secure(shopper, order_id)
        genuine = catcher.wait_for("payment_intent.succeeded", intent_id)
    events = event_count(application.engine)

    # The provider delivers it several times at once (its retries crossing a slow answer).
    replies = _concurrently(shop, genuine, CONCURRENT_DELIVERIES)

    statuses = sorted(reply.body["status"] for reply in replies)
    assert statuses == ["accepted"] + ["duplicate"] * (CONCURRENT_DELIVERIES - 1), [
        (reply.status, reply.body) for reply in replies
    ]
    assert {reply.status for reply in replies} == {200}
    found = shop.wait_for_order(order_id, "confirmed", ["OrderConfirmed"])
    (paid,) = events_of(application.engine, "PaymentSucceeded", order_id)
    assert paid["provider_event_id"] == genuine.event["id"]
    assert len(events_of(application.engine, "OrderConfirmed", order_id)) == 1
    assert [row.provider_event_id for row in inbox(application.engine)] == [genuine.event["id"]]
    settled = event_count(application.engine)
    assert settled == events + 2  # PaymentSucceeded, OrderConfirmed
    saga = _at_rest(shop.saga(order_id))

    # And once more, later, signed anew as a retry is: a duplicate, nothing changes.
    again = shop.deliver(genuine.body, signature(system.provider.webhook_secret, genuine.body))
    assert (again.status, again.body) == (200, {"status": "duplicate"})
    assert shop.redeliver(genuine).body == {"status": "duplicate"}
    assert event_count(application.engine) == settled
    assert len(inbox(application.engine)) == 1
    assert _at_rest(shop.saga(order_id)) == saga
    assert shop.order(order_id)["history"] == found["history"]


def _at_rest(saga: dict[str, Any] | None) -> dict[str, Any] | None:
    """The saga without the clock: its `at_step_seconds` grows while nothing happens."""
    return None if saga is None else {k: v for k, v in saga.items() if k != "at_step_seconds"}


def test_a_webhook_that_does_not_verify_is_refused_and_records_nothing(
    shop: Storefront, system: System, application: Application
) -> None:
    shopper, order_id = _pending_3d_secure_order(shop)
    with system.webhook_diverted(WebhookCatcher()) as catcher:
        intent_id = shop.complete_3d_secure(shopper, order_id)
        genuine = catcher.wait_for("payment_intent.succeeded", intent_id)
    secret = system.provider.webhook_secret
    event = genuine.event
    forged_event = {**event, "id": "evt_forged_1"}
    forged = json.dumps(forged_event).encode()
    tampered = genuine.body.replace(b'"evt_', b'"evt_x', 1)
    assert tampered != genuine.body
    now = int(time.time())
    events = event_count(application.engine)

    attempts = {
        "signed with another secret": (forged, signature("whsec_not_the_secret", forged)),
        "a genuine signature over another body": (forged, genuine.signature),
        "a tampered body": (tampered, genuine.signature),
        "signed too long ago": (forged, signature(secret, forged, now - 3600)),
        "no signature": (forged, None),
        "a malformed signature": (forged, "v1=deadbeef"),
        "signed, but not an event": (b'{"id": "evt_x"}', signature(secret, b'{"id": "evt_x"}')),
        "signed, but not JSON": (b"evt_x", signature(secret, b"evt_x")),
    }
    for what, (body, signed) in attempts.items():
        reply = shop.deliver(body, signed)
        assert reply.status == 400, (what, reply.status, reply.body)
        assert reply.content_type.startswith("application/problem+json"), (what, reply.headers)
        assert reply.body["status"] == 400, (what, reply.body)

    assert inbox(application.engine) == []
    assert event_count(application.engine) == events
    saga = shop.saga(order_id)
    assert saga is not None
    assert (saga["step"], saga["payment"]) == ("paying", "pending")
    shop.wait_for_order(order_id, "pending", ["PaymentPending"])

    # The genuine delivery, as the provider sent it, is accepted and does what the
    # forged ones would have done.
    accepted = shop.redeliver(genuine)
    assert (accepted.status, accepted.body["status"]) == (200, "accepted"), accepted.body
    shop.wait_for_saga(order_id, state="completed", step="awaiting_shipment", payment="succeeded")
    shop.wait_for_order(order_id, "confirmed", ["PaymentSucceeded", "OrderConfirmed"])
    assert [row.provider_event_id for row in inbox(application.engine)] == [event["id"]]


def _event(event_id: str, event_type: str, about: dict[str, Any]) -> bytes:
    """A Stripe event's body (as Stripe sends it) about the object `about`."""
    event = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": about},
    }
    return json.dumps(event).encode()


def _pending_3d_secure_order(shop: Storefront) -> tuple[Customer, str]:
    """A customer, and their order whose charge waits on their 3-D Secure step."""
    shop.add_product("MUG-1", stock=10)
    ada = shop.register("ada@example.com")
    order_id = shop.place(ada, {"MUG-1": 1}, CARD_3DS)
    shop.wait_for_saga(order_id, state="in_progress", step="paying", payment="pending")
    shop.wait_for_order(order_id, "pending", ["PaymentPending"])
    return ada, order_id


def _concurrently(shop: Storefront, delivery: Delivery, count: int) -> list[Reply]:
    """`delivery` posted `count` times at once, exactly as the provider sent it."""
    start = Barrier(count)

    def deliver(_: Any) -> Reply:
        start.wait(timeout=10)
        return shop.redeliver(delivery)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(deliver, range(count)))
