"""The order-fulfillment saga end to end, with real processes: a gunicorn API, two RQ
workers running the saga and its deadlines, everything driven over HTTP.

Happy path and shipping, out of stock, a declined card, a payment deadline followed by
a late payment (refunded), and a customer cancelling a confirmed order. The processes
start once for the module with a 2 s payment deadline; every test starts from an
empty log and an empty Redis (the e2e conftest resets both), so each creates its own
products and customers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from config.bootstrap import Application
from config.settings import Settings
from payments.simulator import post_notification
from tests.e2e.fulfillment_support import (
    SAGA_ACTOR,
    Storefront,
    System,
    cause_of,
    on_hand,
    running_system,
    saga_triggers,
    types_of,
)

PAYMENT_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def system(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    logs = tmp_path_factory.mktemp("fulfillment")
    with running_system(settings, logs, workers=2, payment_timeout=PAYMENT_TIMEOUT) as running:
        yield running


def test_a_paid_order_is_confirmed_and_shipping_it_commits_the_reserved_stock(
    shop: Storefront, application: Application
) -> None:
    shop.add_product("MUG-1", stock=10, amount=1250)
    shop.add_product("TEE-1", stock=5, amount=1999)
    ada = shop.register("ada@example.com")
    correlation_id = f"e2e-{uuid.uuid4().hex}"

    order_id = shop.place(ada, {"MUG-1": 2, "TEE-1": 1}, "tok_visa", correlation_id=correlation_id)

    shop.wait_for_saga(
        order_id,
        state="completed",
        step="awaiting_shipment",
        reservation="reserved",
        payment="succeeded",
    )
    confirmed = shop.wait_for_order(order_id, "confirmed", ["OrderConfirmed"])
    assert confirmed["order"]["total"] == {"amount": 4998, "currency": "EUR"}
    assert confirmed["order"]["payment"]["status"] == "succeeded"
    assert confirmed["order"]["reservation"] == {"status": "reserved"}
    assert shop.available() == {"MUG-1": 8, "TEE-1": 4}
    assert on_hand(application.engine) == {"MUG-1": 10, "TEE-1": 5}  # set aside, not gone

    token = shop.ship(order_id, "TRACK-1")

    saga = shop.wait_for_saga(
        order_id, state="completed", step="shipped", reservation="committed", payment="succeeded"
    )
    shipped = shop.wait_for_order(
        order_id, "shipped", ["ReservationCommitted"], consistency_token=token
    )
    assert shipped["order"]["tracking_number"] == "TRACK-1"
    assert shipped["order"]["reservation"] == {"status": "committed"}
    assert shop.available() == {"MUG-1": 8, "TEE-1": 4}
    assert on_hand(application.engine) == {"MUG-1": 8, "TEE-1": 4}  # the stock left

    history = shipped["history"]
    assert types_of(history) == [
        "OrderPlaced",
        "StockReserved",
        "StockReserved",
        "InventoryReserved",
        "PaymentSucceeded",
        "OrderConfirmed",
        "OrderShipped",
        "StockCommitted",
        "StockCommitted",
        "ReservationCommitted",
    ]
    caused_by = {
        "StockReserved": "OrderPlaced",
        "InventoryReserved": "OrderPlaced",
        "PaymentSucceeded": "InventoryReserved",
        "OrderConfirmed": "PaymentSucceeded",
        "StockCommitted": "OrderShipped",
        "ReservationCommitted": "OrderShipped",
    }
    for event in history:
        if event["type"] in caused_by:
            assert event["actor"] == SAGA_ACTOR, event
            assert cause_of(event, history)["type"] == caused_by[event["type"]], event
        else:
            assert event["actor"] != SAGA_ACTOR, event
    placed, shipping = history[0], history[6]
    assert placed["actor"] == f"customer:{ada.customer_id}"
    assert placed["correlation_id"] == correlation_id
    assert {event["correlation_id"] for event in history[:6]} == {correlation_id}
    assert {event["correlation_id"] for event in history[6:]} == {shipping["correlation_id"]}

    assert saga_triggers(saga) == [
        ("OrderPlaced", ["ReserveInventory ok"]),
        ("InventoryReserved", ["ProcessPayment ok"]),
        ("PaymentSucceeded", ["ConfirmOrder ok"]),
        ("OrderConfirmed", []),
        ("OrderShipped", ["CommitReservation ok"]),
        ("ReservationCommitted", []),
    ]


def test_an_order_for_more_than_is_in_stock_is_cancelled_naming_the_short_sku(
    shop: Storefront, application: Application
) -> None:
    shop.add_product("MUG-1", stock=10)
    shop.add_product("RARE-1", stock=1, amount=9900)
    ada = shop.register("ada@example.com")

    order_id = shop.place(ada, {"MUG-1": 1, "RARE-1": 2}, "tok_visa")

    saga = shop.wait_for_saga(
        order_id, state="compensated", step="cancelled", reservation="failed", payment="not_started"
    )
    found = shop.wait_for_order(order_id, "cancelled", ["OrderCancelled"])
    assert found["order"]["cancellation"] == {
        "reason": "out of stock: RARE-1",
        "cancelled_by": "system",
    }
    assert found["order"]["reservation"] == {
        "status": "failed",
        "shortages": [{"sku": "RARE-1", "requested": 2, "available": 1}],
    }
    assert found["order"]["payment"] == {"status": "not_started"}
    assert types_of(found["history"]) == [
        "OrderPlaced",
        "InventoryReservationFailed",
        "OrderCancelled",
    ]
    # All or nothing: the MUG-1 line that was in stock holds nothing either.
    assert shop.available() == {"MUG-1": 10, "RARE-1": 1}
    assert on_hand(application.engine) == {"MUG-1": 10, "RARE-1": 1}
    assert saga_triggers(saga) == [
        ("OrderPlaced", ["ReserveInventory ok"]),
        ("InventoryReservationFailed", ["CancelOrder ok"]),
        ("OrderCancelled", []),
    ]


def test_a_declined_card_releases_the_stock_and_cancels_with_the_gateways_reason(
    shop: Storefront,
) -> None:
    shop.add_product("MUG-1", stock=10)
    ada = shop.register("ada@example.com")

    order_id = shop.place(ada, {"MUG-1": 3}, "tok_declined")

    saga = shop.wait_for_saga(
        order_id, state="compensated", step="cancelled", reservation="released", payment="failed"
    )
    found = shop.wait_for_order(order_id, "cancelled", ["InventoryReleased", "OrderCancelled"])
    assert found["order"]["cancellation"] == {
        "reason": "payment failed: card_declined",
        "cancelled_by": "system",
    }
    assert found["order"]["payment"]["status"] == "failed"
    assert found["order"]["payment"]["reason"] == "card_declined"
    assert found["order"]["reservation"] == {"status": "released"}
    assert types_of(found["history"]) == [
        "OrderPlaced",
        "StockReserved",
        "InventoryReserved",
        "PaymentFailed",
        "StockReleased",
        "InventoryReleased",
        "OrderCancelled",
    ]
    assert shop.available() == {"MUG-1": 10}
    assert saga_triggers(saga) == [
        ("OrderPlaced", ["ReserveInventory ok"]),
        ("InventoryReserved", ["ProcessPayment ok"]),
        ("PaymentFailed", ["ReleaseInventory ok", "CancelOrder ok"]),
        ("InventoryReleased", []),
        ("OrderCancelled", []),
    ]


def test_no_payment_by_the_deadline_compensates_and_a_late_payment_is_refunded(
    shop: Storefront, system: System
) -> None:
    shop.add_product("MUG-1", stock=10)
    ada = shop.register("ada@example.com")

    order_id = shop.place(ada, {"MUG-1": 2}, "tok_timeout")

    saga = shop.wait_for_saga(
        order_id, state="compensated", step="cancelled", reservation="released", payment="pending"
    )
    found = shop.wait_for_order(order_id, "cancelled", ["OrderCancelled"])
    assert found["order"]["cancellation"] == {
        "reason": "payment timed out",
        "cancelled_by": "system",
    }
    assert found["order"]["payment"]["status"] == "pending"
    assert shop.available() == {"MUG-1": 10}
    # The deadline counts from the charge (the saga decided it in the charge's transaction).
    pending = next(event for event in found["history"] if event["type"] == "PaymentPending")
    timed_out = next(m for m in saga["history"] if m["trigger"] == "payment deadline")
    waited = datetime.fromisoformat(timed_out["at"]) - datetime.fromisoformat(
        pending["recorded_at"]
    )
    assert waited.total_seconds() >= PAYMENT_TIMEOUT, "compensated before the deadline"

    # The provider answers after all: the payment succeeds, and is given back.
    secret = system.settings.payment_webhook_secret
    assert post_notification(system.url, secret, order_id) == 200

    saga = shop.wait_for_saga(
        order_id, state="compensated", step="cancelled", reservation="released", payment="refunded"
    )
    found = shop.wait_for_order(order_id, "cancelled", ["PaymentRefunded"])
    payment = found["order"]["payment"]
    assert payment["status"] == "refunded"
    assert payment["refund_reason"] == "payment arrived after the order was cancelled"
    assert types_of(found["history"]) == [
        "OrderPlaced",
        "StockReserved",
        "InventoryReserved",
        "PaymentPending",
        "StockReleased",
        "InventoryReleased",
        "OrderCancelled",
        "PaymentSucceeded",
        "PaymentRefunded",
    ]
    assert shop.available() == {"MUG-1": 10}
    listed = shop.call("GET", "/admin/api/sagas?state=compensated", headers=shop.admin, expect=200)
    assert [item["order_id"] for item in listed["items"]] == [order_id]
    assert listed["counts"] == {"in_progress": 0, "completed": 0, "compensated": 1, "stuck": 0}
    assert saga_triggers(saga) == [
        ("OrderPlaced", ["ReserveInventory ok"]),
        ("InventoryReserved", ["ProcessPayment ok"]),
        ("PaymentPending", []),
        ("payment deadline", ["ReleaseInventory ok", "CancelOrder ok"]),
        ("InventoryReleased", []),
        ("OrderCancelled", []),
        ("PaymentSucceeded", ["RefundPayment ok"]),
        ("PaymentRefunded", []),
    ]


def test_a_customer_cancelling_a_confirmed_order_is_refunded_and_the_stock_released(
    shop: Storefront,
) -> None:
    shop.add_product("MUG-1", stock=10)
    ada = shop.register("ada@example.com")
    order_id = shop.place(ada, {"MUG-1": 4}, "tok_visa")
    shop.wait_for_saga(order_id, state="completed", step="awaiting_shipment")
    shop.wait_for_order(order_id, "confirmed")
    assert shop.available() == {"MUG-1": 6}

    shop.cancel(ada, order_id, "changed my mind")

    saga = shop.wait_for_saga(
        order_id, state="compensated", step="cancelled", reservation="released", payment="refunded"
    )
    found = shop.wait_for_order(order_id, "cancelled", ["PaymentRefunded", "InventoryReleased"])
    assert found["order"]["cancellation"] == {
        "reason": "changed my mind",
        "cancelled_by": "customer",
    }
    assert found["order"]["payment"]["status"] == "refunded"
    assert found["order"]["payment"]["refund_reason"] == "order cancelled"
    assert found["order"]["reservation"] == {"status": "released"}
    assert types_of(found["history"]) == [
        "OrderPlaced",
        "StockReserved",
        "InventoryReserved",
        "PaymentSucceeded",
        "OrderConfirmed",
        "OrderCancelled",
        "PaymentRefunded",
        "StockReleased",
        "InventoryReleased",
    ]
    assert shop.available() == {"MUG-1": 10}
    assert saga_triggers(saga)[-3:] == [
        ("OrderCancelled", ["RefundPayment ok", "ReleaseInventory ok"]),
        ("PaymentRefunded", []),
        ("InventoryReleased", []),
    ]
