"""The order-fulfillment saga end to end, with real processes and a real payment provider:
a gunicorn API, two RQ workers running the saga and its deadlines, a payments worker
calling the session's local Stripe (localstripe, see localdev.stripe_server) through the
official SDK, `rq cron`, and Stripe's webhooks coming back to the API; everything driven
over HTTP, and every outcome checked in the API, the log and at the provider.

Paid and shipped, out of stock, declined cards, a 3-D Secure charge nobody completes by
the payment deadline (the order compensated, the charge cancelled at the provider, the
customer's late authentication refused), a customer cancelling while 3-D Secure waits
(the charge stopped likewise), and a customer cancelling a confirmed order (refunded at
the provider; the `charge.refunded` webhook that follows changes nothing). A late
payment that is refunded is in test_payment_provider_faults.py, which can hold the
provider still to make one.

The processes start once for the module with a 5 s payment deadline: short enough to
wait out, long enough for a charge (a job, an HTTP call to a local server) to answer
well inside it on a loaded machine. Reconciliation keeps its default 30 s, so the
payments here settle by the payments job or the webhook alone. Every test starts from an
empty log and an empty Redis (the e2e conftest resets both), so each creates its own
products and customers; the provider's objects stay, and are looked up by order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from config.bootstrap import Application
from config.settings import Settings
from tests.e2e.fulfillment_support import (
    CARD_3DS,
    CARD_DECLINED,
    CARD_NO_FUNDS,
    CARD_OK,
    PROVIDER_ACTOR,
    SAGA_ACTOR,
    Storefront,
    System,
    cause_of,
    events_of,
    on_hand,
    running_system,
    saga_triggers,
    types_of,
    wait_for_inbox,
)

PAYMENT_TIMEOUT = 5.0


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

    order_id = shop.place(ada, {"MUG-1": 2, "TEE-1": 1}, CARD_OK, correlation_id=correlation_id)

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

    # At the provider: one PaymentIntent for the order, succeeded, of the order's amount.
    (paid,) = events_of(application.engine, "PaymentSucceeded", order_id)
    reference = paid["provider_reference"]
    assert confirmed["order"]["payment"]["reference"] == reference
    (intent,) = shop.provider.intents_of(order_id)
    assert intent["id"] == reference
    assert (intent["status"], intent["amount"], intent["currency"]) == ("succeeded", 4998, "eur")
    assert intent["amount_received"] == 4998
    assert intent["metadata"] == {"order_id": order_id, "attempt": "1"}
    # Stripe's payment_intent.succeeded webhook follows the job's answer: nothing more.
    wait_for_inbox(application.engine, "payment_intent.succeeded", reference)
    assert len(events_of(application.engine, "PaymentSucceeded", order_id)) == 1

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
        "PaymentRequested",
        "PaymentSucceeded",
        "OrderConfirmed",
        "ShipmentDispatched",  # shipping the order ships all of it as one shipment
        "OrderShipped",
        "StockCommitted",
        "StockCommitted",
        "ReservationCommitted",
    ]
    caused_by = {
        "StockReserved": "OrderPlaced",
        "InventoryReserved": "OrderPlaced",
        "PaymentRequested": "InventoryReserved",
        "OrderConfirmed": "PaymentSucceeded",
        "StockCommitted": "ShipmentDispatched",  # the shipment's lines leave
        "ReservationCommitted": "ShipmentDispatched",
    }
    for event in history:
        if event["type"] in caused_by:
            assert event["actor"] == SAGA_ACTOR, event
            assert cause_of(event, history)["type"] == caused_by[event["type"]], event
        elif event["type"] == "PaymentSucceeded":
            assert event["actor"] == PROVIDER_ACTOR, event
        else:
            assert event["actor"] not in (SAGA_ACTOR, PROVIDER_ACTOR), event
    placed, shipping = history[0], history[7]
    assert placed["actor"] == f"customer:{ada.customer_id}"
    assert placed["correlation_id"] == correlation_id
    # The payments job answers in the placement's conversation (the webhook, in its own,
    # on the rare run where it records the charge before the job does).
    answered_by_job = paid["provider_event_id"] is None
    conversation = history[:7] if answered_by_job else history[:5]
    assert {event["correlation_id"] for event in conversation} == {correlation_id}
    assert {event["correlation_id"] for event in history[7:]} == {shipping["correlation_id"]}

    assert saga_triggers(saga) == [
        ("OrderPlaced", ["ReserveInventory ok"]),
        ("InventoryReserved", ["ProcessPayment ok"]),
        ("PaymentSucceeded", ["ConfirmOrder ok"]),
        ("OrderConfirmed", []),
        ("ShipmentDispatched", ["CommitReservation ok"]),
        ("OrderShipped", ["CommitReservation ok"]),  # nothing left: changes nothing
        ("ReservationCommitted", []),
    ]


def test_an_order_for_more_than_is_in_stock_is_cancelled_naming_the_short_sku(
    shop: Storefront, application: Application
) -> None:
    shop.add_product("MUG-1", stock=10)
    shop.add_product("RARE-1", stock=1, amount=9900)
    ada = shop.register("ada@example.com")

    order_id = shop.place(ada, {"MUG-1": 1, "RARE-1": 2}, CARD_OK)

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
    assert shop.provider.intents_of(order_id) == []  # the provider was never asked


@pytest.mark.parametrize(
    ("card", "decline_code"),
    [(CARD_DECLINED, "generic_decline"), (CARD_NO_FUNDS, "insufficient_funds")],
)
def test_a_declined_card_releases_the_stock_and_cancels_with_the_providers_reason(
    shop: Storefront, application: Application, card: str, decline_code: str
) -> None:
    shop.add_product("MUG-1", stock=10)
    ada = shop.register("ada@example.com")

    order_id = shop.place(ada, {"MUG-1": 3}, card)

    saga = shop.wait_for_saga(
        order_id, state="compensated", step="cancelled", reservation="released", payment="failed"
    )
    found = shop.wait_for_order(order_id, "cancelled", ["InventoryReleased", "OrderCancelled"])
    assert found["order"]["cancellation"] == {
        "reason": f"payment failed: {decline_code}",
        "cancelled_by": "system",
    }
    assert found["order"]["payment"]["status"] == "failed"
    assert found["order"]["payment"]["reason"] == decline_code
    assert found["order"]["reservation"] == {"status": "released"}
    assert types_of(found["history"]) == [
        "OrderPlaced",
        "StockReserved",
        "InventoryReserved",
        "PaymentRequested",
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
    # At the provider: the one attempt, declined with that code, nothing captured.
    (intent,) = shop.provider.intents_of(order_id)
    assert intent["status"] == "requires_payment_method"
    assert intent["amount_received"] == 0
    assert intent["last_payment_error"]["decline_code"] == decline_code
    # Its payment_intent.payment_failed webhook follows the job's answer: nothing more.
    wait_for_inbox(application.engine, "payment_intent.payment_failed", intent["id"])
    assert len(events_of(application.engine, "PaymentFailed", order_id)) == 1
    assert shop.order(order_id)["history"] == found["history"]


def test_no_payment_by_the_deadline_compensates_and_the_charge_is_cancelled_at_the_provider(
    shop: Storefront, application: Application
) -> None:
    shop.add_product("MUG-1", stock=10)
    ada = shop.register("ada@example.com")

    # 3-D Secure: the charge waits on the customer, who does not authenticate in time.
    order_id = shop.place(ada, {"MUG-1": 2}, CARD_3DS)
    intent_id, client_secret = shop.secure_action(ada, order_id)

    saga = shop.wait_for_saga(
        order_id, state="compensated", step="cancelled", reservation="released", payment="failed"
    )
    found = shop.wait_for_order(order_id, "cancelled", ["OrderCancelled", "PaymentFailed"])
    assert found["order"]["cancellation"] == {
        "reason": "payment timed out",
        "cancelled_by": "system",
    }
    assert shop.available() == {"MUG-1": 10}
    # The deadline counts from the charge asked for (the saga set it in that transaction).
    requested = next(e for e in found["history"] if e["type"] == "PaymentRequested")
    timed_out = next(m for m in saga["history"] if m["trigger"] == "payment deadline")
    waited = datetime.fromisoformat(timed_out["at"]) - datetime.fromisoformat(
        requested["recorded_at"]
    )
    assert waited.total_seconds() >= PAYMENT_TIMEOUT, "compensated before the deadline"
    # Nobody may pay for it any more: the charge waiting on the customer is cancelled at
    # the provider, and the payment has failed.
    assert types_of(found["history"]) == [
        "OrderPlaced",
        "StockReserved",
        "InventoryReserved",
        "PaymentRequested",
        "PaymentPending",
        "StockReleased",
        "InventoryReleased",
        "OrderCancelled",
        "PaymentCancellationRequested",
        "PaymentFailed",
    ]
    assert found["order"]["payment"]["status"] == "failed"
    assert found["order"]["payment"]["reason"] == "canceled"
    assert saga_triggers(saga) == [
        ("OrderPlaced", ["ReserveInventory ok"]),
        ("InventoryReserved", ["ProcessPayment ok"]),
        ("PaymentPending", []),
        ("payment deadline", ["ReleaseInventory ok", "CancelOrder ok", "AbandonPayment ok"]),
        ("InventoryReleased", []),
        ("OrderCancelled", []),
        ("PaymentFailed", []),
    ]
    intent = shop.provider.intent(intent_id)
    assert (intent["status"], intent["amount_received"]) == ("canceled", 0)
    assert shop.payment(ada, order_id) == {
        "status": "failed",
        "amount": {"amount": 2999, "currency": "EUR"},
        "action": None,
    }
    # Stripe's payment_intent.canceled webhook asks nothing more of the shop.
    wait_for_inbox(application.engine, "payment_intent.canceled", intent_id)
    history = shop.order(order_id)["history"]

    # The customer comes back to authenticate: the provider refuses, nothing is charged.
    status, refused = shop.provider.authenticate(intent_id, client_secret)
    assert status == 400, refused
    assert shop.provider.intent(intent_id)["status"] == "canceled"
    assert [i["id"] for i in shop.provider.intents_of(order_id)] == [intent_id]
    assert shop.order(order_id)["history"] == history
    listed = shop.call("GET", "/admin/api/sagas?state=compensated", headers=shop.admin, expect=200)
    assert [item["order_id"] for item in listed["items"]] == [order_id]
    assert listed["counts"] == {"in_progress": 0, "completed": 0, "compensated": 1, "stuck": 0}


def test_a_customer_cancelling_while_3d_secure_waits_stops_the_charge(
    shop: Storefront, application: Application
) -> None:
    shop.add_product("MUG-1", stock=10)
    ada = shop.register("ada@example.com")
    order_id = shop.place(ada, {"MUG-1": 1}, CARD_3DS)
    intent_id, client_secret = shop.secure_action(ada, order_id)

    shop.cancel(ada, order_id, "found it cheaper")

    saga = shop.wait_for_saga(
        order_id, state="compensated", step="cancelled", reservation="released", payment="failed"
    )
    found = shop.wait_for_order(order_id, "cancelled", ["PaymentFailed", "InventoryReleased"])
    assert found["order"]["cancellation"] == {
        "reason": "found it cheaper",
        "cancelled_by": "customer",
    }
    assert found["order"]["payment"]["reason"] == "canceled"
    assert types_of(found["history"]) == [
        "OrderPlaced",
        "StockReserved",
        "InventoryReserved",
        "PaymentRequested",
        "PaymentPending",
        "OrderCancelled",
        "StockReleased",
        "InventoryReleased",
        "PaymentCancellationRequested",
        "PaymentFailed",
    ]
    assert saga_triggers(saga) == [
        ("OrderPlaced", ["ReserveInventory ok"]),
        ("InventoryReserved", ["ProcessPayment ok"]),
        ("PaymentPending", []),
        ("OrderCancelled", ["ReleaseInventory ok", "AbandonPayment ok"]),
        ("InventoryReleased", []),
        ("PaymentFailed", []),
    ]
    assert shop.available() == {"MUG-1": 10}
    intent = shop.provider.intent(intent_id)
    assert (intent["status"], intent["amount_received"]) == ("canceled", 0)
    wait_for_inbox(application.engine, "payment_intent.canceled", intent_id)
    # Too late to authenticate: nothing can be charged for the cancelled order.
    status, refused = shop.provider.authenticate(intent_id, client_secret)
    assert status == 400, refused
    assert shop.provider.intent(intent_id)["status"] == "canceled"


def test_a_customer_cancelling_a_confirmed_order_is_refunded_and_the_stock_released(
    shop: Storefront, application: Application
) -> None:
    shop.add_product("MUG-1", stock=10)
    ada = shop.register("ada@example.com")
    order_id = shop.place(ada, {"MUG-1": 4}, CARD_OK)
    shop.wait_for_saga(order_id, state="completed", step="awaiting_shipment")
    confirmed = shop.wait_for_order(order_id, "confirmed")
    assert shop.available() == {"MUG-1": 6}
    reference = confirmed["order"]["payment"]["reference"]
    wait_for_inbox(application.engine, "payment_intent.succeeded", reference)

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
    # The refund is asked for with the release, and made afterwards by a payments job.
    assert types_of(found["history"]) == [
        "OrderPlaced",
        "StockReserved",
        "InventoryReserved",
        "PaymentRequested",
        "PaymentSucceeded",
        "OrderConfirmed",
        "OrderCancelled",
        "RefundRequested",
        "StockReleased",
        "InventoryReleased",
        "PaymentRefunded",
    ]
    assert shop.available() == {"MUG-1": 10}
    assert saga_triggers(saga)[-3:] == [
        ("OrderCancelled", ["RefundPayment ok", "ReleaseInventory ok"]),
        ("InventoryReleased", []),
        ("PaymentRefunded", []),
    ]
    assert found["order"]["total"] == {"amount": 5000, "currency": "EUR"}  # free shipping
    _assert_refunded_at_provider(shop, application, order_id, reference, 5000)


def _assert_refunded_at_provider(
    shop: Storefront, application: Application, order_id: str, intent_id: str, amount: int
) -> None:
    """The order's one charge is refunded in full at the provider, under the reference
    PaymentRefunded names; Stripe's `charge.refunded` webhook, once received, changed
    nothing more."""
    (refunded,) = events_of(application.engine, "PaymentRefunded", order_id)
    assert refunded["amount"] == {"amount": amount, "currency": "EUR"}
    (intent,) = shop.provider.intents_of(order_id)
    assert (intent["id"], intent["status"], intent["amount_received"]) == (
        intent_id,
        "succeeded",
        amount,
    )
    charge = shop.provider.charge(intent["latest_charge"])
    assert (charge["refunded"], charge["amount_refunded"], charge["amount"]) == (
        True,
        amount,
        amount,
    )
    refunds = shop.provider.client.v1.refunds.list(params={"payment_intent": intent_id}).data
    assert [refund.id for refund in refunds] == [refunded["provider_reference"]]
    history = shop.order(order_id)["history"]
    wait_for_inbox(application.engine, "charge.refunded", intent_id)
    assert len(events_of(application.engine, "PaymentRefunded", order_id)) == 1
    assert shop.order(order_id)["history"] == history
