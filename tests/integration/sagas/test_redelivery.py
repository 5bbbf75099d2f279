"""A redelivered event issues nothing twice: after orders went every way through the
saga, its checkpoint is moved back and it catches up again over events it has handled.
Nothing may change: no event appended, no command recorded, no saga row touched."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

import config.jobs
from config.bootstrap import Application
from kernel.event_store import START, Checkpoint
from orders.events import CancelledBy
from sagas.order_fulfillment import NAME
from tests.integration.sagas.support import order_events, rows, sagas, settle
from tests.support.payments import (
    AUTHENTICATION_REQUIRED,
    DECLINED,
    WEBHOOK_PATH,
    authenticate,
    payment_intent,
    pending_charge,
    signed_headers,
    stripe_event,
)
from tests.support.shop import Shop
from tests.support.state import row_count


@pytest.fixture
def orders(
    jobs: None, application: Application, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Orders taken down every path of the saga, settled: their ids by path."""
    # Deadlines fall due at once; only the unpaid order is still waiting on one.
    monkeypatch.setattr(application.saga.decide, "payment_timeout", timedelta(0))
    shop = Shop(application.bus)
    shop.add_product("MUG-1", stock=50)
    shop.add_product("RARE-1", stock=1, amount=9900)
    ada = shop.customer("ada@example.com")
    orders = {
        "shipped": shop.place(ada, {"MUG-1": 2}, "pm_card_visa"),
        "declined": shop.place(ada, {"MUG-1": 1}, DECLINED),
        "out_of_stock": shop.place(ada, {"MUG-1": 1, "RARE-1": 2}, "pm_card_visa"),
        "cancelled_after_payment": shop.place(ada, {"MUG-1": 3}, "pm_card_visa"),
        "paid_too_late": shop.place(ada, {"MUG-1": 1}, AUTHENTICATION_REQUIRED),
        "confirmed": shop.place(ada, {"MUG-1": 1}, "pm_card_visa"),
    }
    placed = {path: order.order_id for path, order in orders.items()}
    settle(application)
    shop.ship(orders["shipped"], f"TRACK-{placed['shipped'][:8]}")
    shop.cancel(orders["cancelled_after_payment"], "changed my mind", by=CancelledBy.CUSTOMER)
    assert application.saga.overdue() == [placed["paid_too_late"]]
    assert config.jobs.payment_deadline(placed["paid_too_late"]) is True
    # The customer completes 3-D Secure after the deadline, before the payments worker
    # cancels the charge at Stripe: Stripe's webhook says so.
    settings = application.settings
    intent = pending_charge(application.engine, placed["paid_too_late"])
    assert authenticate(settings, intent)["status"] == "succeeded"
    body = stripe_event("payment_intent.succeeded", payment_intent(settings, intent), "evt_late")
    response = client.post(
        WEBHOOK_PATH, data=body, headers=signed_headers(settings.require_stripe()[1], body)
    )
    assert response.get_json()["status"] == "accepted"
    settle(application)

    found = sagas(application)
    outcome = {
        path: (found[order_id]["state"], found[order_id]["step"])
        for path, order_id in placed.items()
    }
    assert outcome == {
        "shipped": ("completed", "shipped"),
        "declined": ("compensated", "cancelled"),
        "out_of_stock": ("compensated", "cancelled"),
        "cancelled_after_payment": ("compensated", "cancelled"),
        "paid_too_late": ("compensated", "cancelled"),
        "confirmed": ("completed", "awaiting_shipment"),
    }
    assert order_events(application, placed["paid_too_late"])[-3:] == [
        "PaymentSucceeded",
        "RefundRequested",
        "PaymentRefunded",
    ]
    return placed


def _log(application: Application) -> list[Checkpoint]:
    with application.engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT transaction_id::text::bigint, position FROM events"
                " ORDER BY transaction_id, position"
            )
        ).all()
    return [Checkpoint(tx, position) for tx, position in found]


@pytest.mark.parametrize("back_to", ["the start", "halfway", "the last event"])
def test_catching_up_again_from_an_earlier_checkpoint_changes_nothing(
    orders: dict[str, str], application: Application, back_to: str
) -> None:
    log = _log(application)
    earlier = {
        "the start": START,
        "halfway": log[len(log) // 2],
        "the last event": log[-2],
    }[back_to]
    events = rows(application, "SELECT * FROM events ORDER BY position")
    commands = rows(application, "SELECT * FROM processed_commands ORDER BY command_id")
    before = sagas(application)

    with application.engine.begin() as conn:  # every partition's checkpoint
        moved = conn.execute(
            text(
                "UPDATE subscriptions SET transaction_id = :tx, position = :position"
                " WHERE name = :name AND (transaction_id, position) > (:tx, :position)"
            ),
            {"tx": earlier.transaction_id, "position": earlier.position, "name": NAME},
        ).rowcount
    assert moved >= 1
    (status,) = application.runner.status([application.saga])
    assert status.lag_events > 0

    settle(application)

    assert rows(application, "SELECT * FROM events ORDER BY position") == events
    assert rows(application, "SELECT * FROM processed_commands ORDER BY command_id") == commands
    assert sagas(application) == before
    (status,) = application.runner.status([application.saga])
    assert max(partition.checkpoint for partition in status.partitions) == log[-1]


def test_a_repeated_deadline_or_catch_up_job_changes_nothing(
    orders: dict[str, str], application: Application
) -> None:
    tables = ("events", "processed_commands")
    counts = [row_count(application.engine, table) for table in tables]
    before = sagas(application)

    for order_id in orders.values():
        assert config.jobs.payment_deadline(order_id) is False
    assert config.jobs.catch_up(NAME) == {NAME: 0}

    assert [row_count(application.engine, table) for table in tables] == counts
    assert sagas(application) == before
