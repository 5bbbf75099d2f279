from __future__ import annotations

import pytest
from redis import Redis

from inventory import events as inventory_events
from kernel.event_store import START, Checkpoint, ConsistencyToken
from kernel.handlers import EventHandlers
from orders import events as order_events
from payments import events as payment_events
from projections import catalog, customer_directory, order_detail, order_list, sales_analytics
from projections.schemas import ConsistencySchema, SalesArgsSchema


def test_an_event_type_gets_one_handler_per_read_model() -> None:
    handlers: EventHandlers[[], None] = EventHandlers()
    handlers.on(order_events.OrderPlaced)(lambda event: None)

    with pytest.raises(ValueError, match="OrderPlaced already has a handler"):
        handlers.on(order_events.OrderPlaced)(lambda event: None)
    assert not handlers.handles("OrderShipped")
    assert handlers.types == {"OrderPlaced"}


def test_each_read_model_handles_the_events_it_shows() -> None:
    assert catalog.handlers.types == {
        "ProductAdded",
        "PriceChanged",
        "StockReplenished",
        "StockReserved",
        "StockReleased",
        "StockCommitted",
        "StockReturned",
    }
    assert sales_analytics.handlers.types == {
        "OrderPlaced",
        "OrderConfirmed",
        "OrderCancelled",
        "PaymentRefunded",
        "ReturnInspected",  # units returned per product
    }
    carts = set(order_events.CART_EVENTS)  # the cart read model's
    order_level = {
        *(
            e.__name__
            for e in order_events.EVENTS
            if e is not order_events.CustomerRegistered and e not in carts
        ),
        # CustomerForgotten: an order's shipping address goes with its customer's key
        # RefundQueued: a refund waiting behind another changes nothing shown yet
        *(e.__name__ for e in payment_events.EVENTS if e is not payment_events.RefundQueued),
        "InventoryReserved",
        "InventoryReservationFailed",
        "InventoryReleased",
        "ReservationCommitted",
    }
    assert order_detail.handlers.types == order_level
    customer_level = {order_events.CustomerRegistered, order_events.CustomerForgotten}
    # Returns leave an order's status alone: the list does not read them.
    returns = {order_events.ReturnRequested, order_events.ReturnReceived}
    returns |= {order_events.ReturnInspected}
    assert order_list.handlers.types == {  # the list holds no personal data
        *(e.__name__ for e in order_events.EVENTS if e not in customer_level | returns | carts),
        "PaymentRefunded",  # a refunded order reads `refunded`
    }
    assert customer_directory.handlers.types == {"CustomerRegistered", "CustomerForgotten"}
    assert all(
        e.__name__ not in catalog.handlers.types
        for e in (inventory_events.InventoryReserved, inventory_events.ReservationCommitted)
    )


def test_the_redis_order_list_cannot_be_declared_synchronous() -> None:
    redis = Redis()  # never connects: nothing is sent
    with pytest.raises(ValueError, match="order_list cannot be synchronous"):
        order_list.OrderList(redis, mode="sync")


def test_generations_keep_their_keys_apart() -> None:
    assert order_list.prefix(1) == "rm:order_list:1:"
    assert not order_list.prefix(10).startswith(order_list.prefix(1))
    keys = order_list.Keys(order_list.prefix(2))
    assert keys.checkpoint() == "rm:order_list:2:checkpoint"
    assert keys.customer("c-1") == "rm:order_list:2:customer:c-1"


@pytest.mark.parametrize("token", ["0.0", "17.4", "18446744073709551615.3", "17.4.63"])
def test_a_consistency_token_reads_back_as_the_checkpoint_it_came_from(token: str) -> None:
    assert ConsistencySchema().validate({"consistency_token": token}) == {}
    assert str(ConsistencyToken.parse(token)) == token
    assert Checkpoint.parse(token).token() == ".".join(token.split(".")[:2])


@pytest.mark.parametrize(
    "token", ["", "1", "1.", ".1", "a.1", "1.2.3.4", "1.2.", "-1.2", " 1.2", "1.2.100"]
)
def test_a_malformed_consistency_token_is_refused(token: str) -> None:
    assert "consistency_token" in ConsistencySchema().validate({"consistency_token": token})


def test_checkpoints_order_by_transaction_before_position() -> None:
    assert START < Checkpoint(1, 9) < Checkpoint(2, 1) < Checkpoint(2, 2)


def test_a_sales_range_runs_forward_and_spans_at_most_a_year() -> None:
    schema = SalesArgsSchema()
    assert schema.validate({"from": "2026-01-01", "to": "2026-12-31"}) == {}
    assert "to" in schema.validate({"from": "2026-02-01", "to": "2026-01-31"})
    assert "to" in schema.validate({"from": "2025-01-01", "to": "2026-01-03"})
