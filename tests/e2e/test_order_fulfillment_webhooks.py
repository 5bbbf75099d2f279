"""Asynchronous payments end to end: the simulated provider's signed webhook confirms the
order, a redelivered webhook changes nothing, and a wrongly signed one is refused.

Real processes again (a gunicorn API and one RQ worker, which also plays the provider
and posts the webhook to PUBLIC_URL about 1 s after the pending charge). The payment
deadline here is 30 s, not 2 s: the provider's callback arrives 1-2 s after the charge
(its 1 s delay plus RQ's 1 s scheduler tick), so a 2 s deadline would race it and the
outcome would be a coin toss. The deadline itself is covered in test_order_fulfillment.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from config.bootstrap import Application
from config.settings import Settings
from payments.simulator import post_notification
from tests.e2e.fulfillment_support import (
    Storefront,
    System,
    running_system,
    saga_triggers,
    types_of,
)
from tests.support.state import row_count

PAYMENT_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def system(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    logs = tmp_path_factory.mktemp("fulfillment-webhooks")
    with running_system(settings, logs, workers=1, payment_timeout=PAYMENT_TIMEOUT) as running:
        yield running


def test_an_async_payment_is_confirmed_by_the_providers_webhook_and_a_redelivery_is_a_no_op(
    shop: Storefront, system: System, application: Application
) -> None:
    shop.add_product("MUG-1", stock=10)
    ada = shop.register("ada@example.com")

    order_id = shop.place(ada, {"MUG-1": 2}, "tok_async")

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
        "PaymentPending",
        "PaymentSucceeded",
        "OrderConfirmed",
    ]
    assert history[4]["actor"] == "payment-provider"
    assert saga_triggers(saga) == [
        ("OrderPlaced", ["ReserveInventory ok"]),
        ("InventoryReserved", ["ProcessPayment ok"]),
        ("PaymentPending", []),
        ("PaymentSucceeded", ["ConfirmOrder ok"]),
        ("OrderConfirmed", []),
    ]
    (provider_event_id, payload), *others = _inbox(application)
    assert others == []
    assert payload["type"] == "payment.succeeded"
    assert payload["data"]["order_id"] == order_id
    assert _succeeded_by(application, order_id) == provider_event_id
    events = row_count(application.engine, "events")
    inbox = row_count(application.engine, "payment_webhook_inbox")

    # The provider delivers the same event again (it retries until it sees a 2xx).
    assert shop.post_webhook(order_id, provider_event_id) == (200, {"status": "duplicate"})
    secret = system.settings.payment_webhook_secret
    redelivered = post_notification(
        system.url, secret, order_id, provider_event_id=provider_event_id
    )
    assert redelivered == 200

    assert row_count(application.engine, "events") == events
    assert row_count(application.engine, "payment_webhook_inbox") == inbox
    assert shop.saga(order_id) == saga
    assert shop.order(order_id)["history"] == history

    # Someone without the secret.
    status, problem = shop.post_webhook(order_id, "evt_forged", secret="not-the-secret")
    assert status == 401, problem
    assert row_count(application.engine, "events") == events
    assert row_count(application.engine, "payment_webhook_inbox") == inbox


def test_a_wrongly_signed_webhook_is_refused_and_the_payment_stays_pending_until_a_signed_one(
    shop: Storefront, application: Application
) -> None:
    shop.add_product("MUG-1", stock=10)
    ada = shop.register("ada@example.com")
    # tok_timeout: the simulated provider never calls back on its own.
    order_id = shop.place(ada, {"MUG-1": 1}, "tok_timeout")
    shop.wait_for_saga(order_id, state="in_progress", step="paying", payment="pending")
    events = row_count(application.engine, "events")

    status, problem = shop.post_webhook(order_id, "evt_1", secret="not-the-secret")

    assert status == 401, problem
    assert row_count(application.engine, "events") == events
    assert row_count(application.engine, "payment_webhook_inbox") == 0
    saga = shop.saga(order_id)
    assert saga is not None
    assert (saga["step"], saga["payment"]) == ("paying", "pending")

    assert shop.post_webhook(order_id, "evt_1")[0] == 200

    shop.wait_for_saga(order_id, state="completed", step="awaiting_shipment", payment="succeeded")
    shop.wait_for_order(order_id, "confirmed", ["PaymentSucceeded", "OrderConfirmed"])
    # A further, different notification for a payment that is no longer pending.
    status, answer = shop.post_webhook(order_id, "evt_2", outcome="failed")
    assert status == 200
    assert (answer["status"], answer["reason"]) == ("ignored", "payment_not_pending")
    shop.wait_for_order(order_id, "confirmed")


def _inbox(application: Application) -> list[tuple[str, dict[str, Any]]]:
    with application.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT provider_event_id, payload FROM payment_webhook_inbox")
        ).all()
    return [(row[0], row[1]) for row in rows]


def _succeeded_by(application: Application, order_id: str) -> str:
    with application.engine.connect() as conn:
        found: str = conn.execute(
            text(
                "SELECT data ->> 'provider_event_id' FROM events"
                " WHERE type = 'PaymentSucceeded' AND data ->> 'order_id' = :id"
            ),
            {"id": order_id},
        ).scalar_one()
    return found
