"""Shipping an order in parts: given the order's events, when a shipment, then its events."""

from __future__ import annotations

import pytest

from kernel.errors import DomainError
from kernel.messages import Event
from orders.domain import Order, OrderStatus, whole_shipment_id
from orders.events import (
    CancelledBy,
    ItemLine,
    OrderCancelled,
    OrderShipped,
    ShipmentDispatched,
)
from tests.support.snapshots import stored
from tests.unit.orders.builders import CUSTOMER, ORDER
from tests.unit.orders.fulfilment_builders import CONFIRMED, given, lines, placed

FIRST = ShipmentDispatched(ORDER, "shipment-1", (ItemLine("MUG", 2), ItemLine("TEE", 1)), "T-1")
PARTLY_SHIPPED: list[Event] = [*CONFIRMED, FIRST]
REST = ShipmentDispatched(ORDER, "shipment-2", (ItemLine("TEE", 2),), "T-2")
SHIPPED: list[Event] = [*PARTLY_SHIPPED, REST, OrderShipped(ORDER, "T-2")]


def test_shipping_some_lines_records_the_shipment_and_leaves_the_order_partly_shipped() -> None:
    order = given(CONFIRMED)

    order.ship_lines("shipment-1", lines(MUG=2, TEE=1), "T-1")

    assert order.pending_events == (FIRST,)
    assert order.status is OrderStatus.PARTIALLY_SHIPPED
    assert order.unshipped() == {"MUG": 0, "TEE": 2}


def test_the_shipment_of_the_last_units_ships_the_order_with_its_tracking_number() -> None:
    order = given(PARTLY_SHIPPED)

    order.ship_lines("shipment-2", lines(TEE=2), "T-2")

    assert order.pending_events == (REST, OrderShipped(ORDER, "T-2"))
    assert order.status is OrderStatus.SHIPPED


def test_one_shipment_of_everything_ships_the_order_at_once() -> None:
    order = given(CONFIRMED)

    order.ship_lines("all", lines(TEE=3, MUG=2), "T-9")

    assert order.pending_events == (
        ShipmentDispatched(ORDER, "all", (ItemLine("TEE", 3), ItemLine("MUG", 2)), "T-9"),
        OrderShipped(ORDER, "T-9"),
    )


@pytest.mark.parametrize("history", [PARTLY_SHIPPED, SHIPPED], ids=["partly", "all shipped"])
def test_the_same_shipment_told_again_changes_nothing(history: list[Event]) -> None:
    order = given(history)

    order.ship_lines("shipment-1", lines(TEE=1, MUG=2), "T-1")  # its lines in another order

    assert order.pending_events == ()


@pytest.mark.parametrize(
    ("units", "tracking_number"),
    [({"MUG": 2}, "T-1"), ({"MUG": 2, "TEE": 1}, "T-OTHER")],
    ids=["other lines", "other tracking number"],
)
def test_another_shipment_under_a_known_id_is_refused(
    units: dict[str, int], tracking_number: str
) -> None:
    order = given(PARTLY_SHIPPED)

    with pytest.raises(DomainError) as error:
        order.ship_lines("shipment-1", lines(**units), tracking_number)

    assert error.value.code == "shipment_conflict"
    assert order.pending_events == ()


def test_more_units_than_are_left_to_ship_are_refused_and_named() -> None:
    order = given(PARTLY_SHIPPED)

    with pytest.raises(DomainError) as error:
        order.ship_lines("shipment-2", lines(TEE=3), "T-2")

    assert error.value.code == "exceeds_unshipped"
    assert "TEE: 3 > 2" in error.value.message
    assert order.pending_events == ()


def test_a_sku_not_on_the_order_cannot_ship() -> None:
    order = given(CONFIRMED)

    with pytest.raises(DomainError) as error:
        order.ship_lines("shipment-1", lines(LAMP=1), "T-1")

    assert error.value.code == "unknown_sku"
    assert "LAMP" in error.value.message


@pytest.mark.parametrize(
    ("units", "code"),
    [({}, "invalid"), ({"MUG": 0}, "invalid"), ({"MUG": -1}, "invalid")],
    ids=["no lines", "zero units", "negative units"],
)
def test_a_shipment_ships_at_least_one_unit_of_each_line(units: dict[str, int], code: str) -> None:
    order = given(CONFIRMED)

    with pytest.raises(DomainError) as error:
        order.ship_lines("shipment-1", lines(**units), "T-1")

    assert error.value.code == code


def test_a_sku_appears_once_in_a_shipment() -> None:
    order = given(CONFIRMED)

    with pytest.raises(DomainError) as error:
        order.ship_lines("shipment-1", lines(MUG=1) + lines(MUG=1), "T-1")

    assert error.value.code == "duplicate_sku"


@pytest.mark.parametrize(
    ("history", "status"),
    [
        ([placed()], "pending"),
        ([placed(), OrderCancelled(ORDER, "x", CancelledBy.SYSTEM, "pending")], "cancelled"),
        (SHIPPED, "shipped"),
    ],
)
def test_only_confirmed_or_partly_shipped_orders_ship_lines(
    history: list[Event], status: str
) -> None:
    order = given(history)

    with pytest.raises(DomainError) as error:
        order.ship_lines("shipment-3", lines(MUG=1), "T-3")

    assert error.value.code == "order_not_shippable"
    assert status in error.value.message


@pytest.mark.parametrize("history", [CONFIRMED, PARTLY_SHIPPED], ids=["confirmed", "partly"])
def test_no_shipment_leaves_once_the_payment_was_refunded(history: list[Event]) -> None:
    order = given(history)

    with pytest.raises(DomainError) as error:
        order.ship_lines("shipment-3", lines(TEE=1), "T-3", payment_refunded=True)

    assert error.value.code == "order_not_shippable"
    assert "refunded" in error.value.message


def test_shipping_the_order_ships_everything_as_one_shipment() -> None:
    order = given(CONFIRMED)

    order.ship("T-1")

    everything = (ItemLine("MUG", 2), ItemLine("TEE", 3))
    assert order.pending_events == (
        ShipmentDispatched(ORDER, whole_shipment_id(ORDER), everything, "T-1"),
        OrderShipped(ORDER, "T-1"),
    )


def test_shipping_a_partly_shipped_order_ships_what_is_left() -> None:
    order = given(PARTLY_SHIPPED)

    order.ship("T-2")

    assert order.pending_events == (
        ShipmentDispatched(ORDER, whole_shipment_id(ORDER), (ItemLine("TEE", 2),), "T-2"),
        OrderShipped(ORDER, "T-2"),
    )


def test_the_whole_shipments_id_is_the_orders_own() -> None:
    assert whole_shipment_id(ORDER) == whole_shipment_id(ORDER)
    assert whole_shipment_id(ORDER) != whole_shipment_id("order-2")


def test_shipping_a_shipped_order_is_refused() -> None:
    order = given(SHIPPED)

    with pytest.raises(DomainError) as error:
        order.ship("T-3")

    assert error.value.code == "order_not_shippable"


@pytest.mark.parametrize("by", [CancelledBy.CUSTOMER, CancelledBy.ADMIN, CancelledBy.SYSTEM])
def test_an_order_with_anything_shipped_cannot_be_cancelled(by: CancelledBy) -> None:
    order = given(PARTLY_SHIPPED)

    with pytest.raises(DomainError) as error:
        order.cancel("too late", by, CUSTOMER)

    assert error.value.code == "order_not_cancellable"
    assert "partially_shipped" in error.value.message


def test_an_order_shipped_before_shipments_were_recorded_shipped_every_unit() -> None:
    order = given([*CONFIRMED, OrderShipped(ORDER, "T-OLD")])

    assert order.unshipped() == {"MUG": 0, "TEE": 0}
    assert order.returnable() == {"MUG": 2, "TEE": 3}


@pytest.mark.parametrize("history", [PARTLY_SHIPPED, SHIPPED], ids=["partly", "all shipped"])
def test_a_snapshot_restores_the_same_shipments(history: list[Event]) -> None:
    order = given(history)

    restored = Order.from_snapshot(ORDER, order.version, stored(order.snapshot_state()))

    assert vars(restored) == vars(order)
    assert restored.status is order.status
