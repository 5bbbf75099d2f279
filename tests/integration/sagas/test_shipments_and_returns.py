"""An order shipped in two parcels, then partly returned, through the real bus and the
saga: each shipment's stock leaves the warehouse, the accepted units come back on hand,
and what they were charged is refunded at the provider, once."""

from __future__ import annotations

from sqlalchemy import text

from config.bootstrap import Application
from inventory.domain import StockItem
from kernel.messages import Metadata, new_id
from kernel.money import Money
from kernel.unit_of_work import UnitOfWork
from orders.commands import (
    InspectReturn,
    OrderLineRequest,
    ReceiveReturn,
    RequestReturn,
    ShipOrderLines,
)
from payments.events import PaymentRefunded
from sagas.order_fulfillment import NAME
from tests.integration.sagas.support import order_events, rows, sagas, settle
from tests.support.shop import Shop


def stock(application: Application, sku: str) -> tuple[int, int]:
    """(on hand, reserved) of the SKU, as a command loads it."""
    with application.engine.begin() as conn:
        item = UnitOfWork(conn, application.store, Metadata()).get(StockItem, sku, lock=False)
    return item.on_hand, item.reserved


def refunds(application: Application, order_id: str) -> list[PaymentRefunded]:
    with application.engine.connect() as conn:
        events = application.store.read_stream(conn, f"payment-{order_id}")
    return [r.event for r in events if isinstance(r.event, PaymentRefunded)]


def test_two_shipments_and_a_return_move_the_stock_and_refund_the_accepted_units(
    jobs: None, application: Application
) -> None:
    shop = Shop(application.bus)
    shop.add_product("MUG-1", stock=10)  # 12.50
    shop.add_product("TEE-1", stock=5, amount=1999)
    ada = shop.customer("ada@example.com")
    order = shop.place(ada, {"MUG-1": 2, "TEE-1": 1})
    order_id = order.order_id
    settle(application)  # reserved, paid and confirmed
    assert (stock(application, "MUG-1"), stock(application, "TEE-1")) == ((10, 2), (5, 1))

    mugs = (OrderLineRequest("MUG-1", 2),)
    shop.do(ShipOrderLines(order_id, "parcel-1", mugs, "T-1"))
    settle(application)
    assert (stock(application, "MUG-1"), stock(application, "TEE-1")) == ((8, 0), (5, 1))
    assert sagas(application)[order_id]["step"] == "partially_shipped"
    shop.do(ShipOrderLines(order_id, "parcel-2", (OrderLineRequest("TEE-1", 1),), "T-2"))
    settle(application)
    assert (stock(application, "MUG-1"), stock(application, "TEE-1")) == ((8, 0), (4, 0))

    return_id = new_id()
    back = (OrderLineRequest("MUG-1", 1), OrderLineRequest("TEE-1", 1))
    shop.do(RequestReturn(order_id, return_id, back, "ordered too many", ada))
    shop.do(ReceiveReturn(order_id, return_id))
    shop.do(InspectReturn(order_id, return_id, (OrderLineRequest("MUG-1", 1),), "tee worn"))
    settle(application)

    # One mug back on the shelf; the rejected shirt went back to the customer.
    assert (stock(application, "MUG-1"), stock(application, "TEE-1")) == ((9, 0), (4, 0))
    (refunded,) = refunds(application, order_id)
    assert (refunded.amount, refunded.refund_id) == (Money(1250, "EUR"), return_id)
    assert not refunded.fully_refunded
    assert refunded.refunded_total == Money(1250, "EUR")
    saga = sagas(application)[order_id]
    assert (saga["state"], saga["step"]) == ("completed", "shipped")
    assert saga["data"]["payment"] == "partially_refunded"
    assert saga["data"]["reservation"] == "committed"
    issued = {(m["trigger"], tuple(m["commands"])) for m in saga["history"]}
    assert ("ShipmentDispatched", ("CommitReservation ok",)) in issued
    assert ("ReturnInspected", ("ReturnStock ok", "RefundPayment ok")) in issued
    events = order_events(application, order_id)
    assert events.count("ShipmentDispatched") == 2 and events.count("OrderShipped") == 1
    assert "OrderCancelled" not in events  # a partial refund cancels nothing

    # Redelivered from the start, the saga issues nothing twice: no second restock, no
    # second refund.
    before = rows(application, "SELECT * FROM events ORDER BY position")
    with application.engine.begin() as conn:
        moved = conn.execute(
            text("UPDATE subscriptions SET transaction_id = 0, position = 0 WHERE name = :name"),
            {"name": NAME},
        ).rowcount
    assert moved >= 1
    settle(application)
    assert rows(application, "SELECT * FROM events ORDER BY position") == before
