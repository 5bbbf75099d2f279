from __future__ import annotations

from collections.abc import Sequence

import pytest

from kernel.errors import DomainError
from kernel.messages import Event
from orders.domain import Order, whole_shipment_id
from orders.events import (
    CancelledBy,
    ItemLine,
    OrderCancelled,
    OrderConfirmed,
    OrderShipped,
    ShipmentDispatched,
)
from tests.support.snapshots import stored
from tests.unit.orders.builders import CUSTOMER, ORDER, placed

PENDING: list[Event] = [placed()]
CONFIRMED: list[Event] = [*PENDING, OrderConfirmed(ORDER)]
SHIPPED: list[Event] = [*CONFIRMED, OrderShipped(ORDER, "TRACK-1")]
CANCELLED: list[Event] = [
    *PENDING,
    OrderCancelled(ORDER, "changed my mind", CancelledBy.CUSTOMER, "pending"),
]


def given(history: Sequence[Event]) -> Order:
    order = Order(ORDER)
    order.replay(history)
    return order


def test_confirming_a_pending_order_confirms_it() -> None:
    order = given(PENDING)

    order.confirm()

    assert order.pending_events == (OrderConfirmed(ORDER),)


def test_confirming_a_confirmed_order_again_changes_nothing() -> None:
    order = given(CONFIRMED)

    order.confirm()

    assert order.pending_events == ()


@pytest.mark.parametrize(("history", "status"), [(CANCELLED, "cancelled"), (SHIPPED, "shipped")])
def test_cancelled_or_shipped_orders_cannot_be_confirmed(history: list[Event], status: str) -> None:
    order = given(history)

    with pytest.raises(DomainError) as error:
        order.confirm()

    assert error.value.code == "order_not_confirmable"
    assert status in error.value.message


@pytest.mark.parametrize(("history", "status"), [(PENDING, "pending"), (CONFIRMED, "confirmed")])
def test_the_customer_can_cancel_a_pending_or_confirmed_order(
    history: list[Event], status: str
) -> None:
    order = given(history)

    order.cancel("changed my mind", CancelledBy.CUSTOMER, CUSTOMER)

    assert order.pending_events == (
        OrderCancelled(ORDER, "changed my mind", CancelledBy.CUSTOMER, status),
    )


def test_the_system_cancels_without_naming_a_customer() -> None:
    order = given(PENDING)

    order.cancel("out of stock", CancelledBy.SYSTEM)

    assert order.pending_events == (
        OrderCancelled(ORDER, "out of stock", CancelledBy.SYSTEM, "pending"),
    )


def test_cancelling_a_cancelled_order_again_changes_nothing() -> None:
    order = given(CANCELLED)

    order.cancel("payment failed", CancelledBy.SYSTEM)

    assert order.pending_events == ()


def test_an_order_whose_payment_was_refunded_cannot_ship() -> None:
    order = given(CONFIRMED)

    with pytest.raises(DomainError) as error:
        order.ship("TRACK-1", payment_refunded=True)

    assert error.value.code == "order_not_shippable"
    assert "refunded" in error.value.message
    assert order.pending_events == ()


def test_a_shipped_order_cannot_be_cancelled() -> None:
    order = given(SHIPPED)

    with pytest.raises(DomainError) as error:
        order.cancel("too late", CancelledBy.CUSTOMER, CUSTOMER)

    assert error.value.code == "order_not_cancellable"
    assert error.value.message == f"order {ORDER} is shipped and can no longer be cancelled"


@pytest.mark.parametrize("customer_id", ["someone-else", None])
def test_a_customer_cannot_cancel_an_order_of_someone_else(customer_id: str | None) -> None:
    order = given(PENDING)

    with pytest.raises(DomainError) as error:
        order.cancel("mine now", CancelledBy.CUSTOMER, customer_id)

    assert error.value.code == "not_found"
    assert error.value.message == f"order {ORDER} does not exist"
    assert order.pending_events == ()


def test_another_customer_learns_nothing_even_about_a_shipped_order() -> None:
    order = given(SHIPPED)

    with pytest.raises(DomainError) as error:
        order.cancel("mine now", CancelledBy.CUSTOMER, "someone-else")

    assert error.value.code == "not_found"


def test_only_customers_and_the_system_cancel_orders() -> None:
    order = given(PENDING)

    with pytest.raises(DomainError) as error:
        order.cancel("because", "warehouse")  # type: ignore[arg-type]  # an untyped caller

    assert error.value.code == "invalid"


def test_shipping_a_confirmed_order_ships_it_all_with_the_tracking_number() -> None:
    order = given(CONFIRMED)

    order.ship("TRACK-1")

    assert order.pending_events == (
        ShipmentDispatched(ORDER, whole_shipment_id(ORDER), (ItemLine("MUG", 2),), "TRACK-1"),
        OrderShipped(ORDER, "TRACK-1"),
    )


@pytest.mark.parametrize(
    ("history", "status"),
    [(PENDING, "pending"), (CANCELLED, "cancelled"), (SHIPPED, "shipped")],
)
def test_only_confirmed_orders_can_be_shipped(history: list[Event], status: str) -> None:
    order = given(history)

    with pytest.raises(DomainError) as error:
        order.ship("TRACK-2")

    assert error.value.code == "order_not_shippable"
    assert status in error.value.message
    assert order.pending_events == ()


@pytest.mark.parametrize("history", [PENDING, CONFIRMED, SHIPPED, CANCELLED])
def test_a_snapshot_restores_the_same_order(history: list[Event]) -> None:
    order = given(history)

    restored = Order.from_snapshot(ORDER, order.version, stored(order.snapshot_state()))

    assert vars(restored) == vars(order)
    assert restored.status is order.status  # the enum member, not its string
