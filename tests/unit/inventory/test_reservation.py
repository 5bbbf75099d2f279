"""Reservation: one order's all-or-nothing claim on the stock of several SKUs."""

from __future__ import annotations

import pytest

from inventory.domain import Reservation, StockItem
from inventory.events import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ProductAdded,
    ReservationCommitted,
    Shortage,
    StockCommitted,
    StockLine,
    StockReleased,
    StockReserved,
)
from kernel.errors import DomainError
from kernel.messages import Event
from kernel.money import Money
from tests.support.snapshots import stored

ORDER = "order-1"
LINES = (StockLine("MUG", 2), StockLine("TEE", 1))
RESERVED = InventoryReserved(ORDER, LINES)


def stock(**on_hand: int) -> dict[str, StockItem]:
    items = {}
    for sku, quantity in on_hand.items():
        items[sku] = StockItem(sku)
        items[sku].replay([ProductAdded(sku, sku.title(), Money(500, "EUR"), quantity)])
    return items


def reserved_stock() -> dict[str, StockItem]:
    items = stock(MUG=5, TEE=3)
    items["MUG"].replay([StockReserved("MUG", ORDER, 2, 5, 3)])
    items["TEE"].replay([StockReserved("TEE", ORDER, 1, 3, 2)])
    return items


def given(*events: Event) -> Reservation:
    reservation = Reservation(ORDER)
    reservation.replay(events)
    return reservation


def pending(items: dict[str, StockItem]) -> dict[str, tuple[Event, ...]]:
    return {sku: item.pending_events for sku, item in items.items() if item.pending_events}


def test_reserving_available_stock_reserves_every_line() -> None:
    items = stock(MUG=5, TEE=3)
    reservation = given()

    reservation.reserve(LINES, items)

    assert reservation.pending_events == (RESERVED,)
    assert pending(items) == {
        "MUG": (StockReserved("MUG", ORDER, 2, on_hand=5, available=3),),
        "TEE": (StockReserved("TEE", ORDER, 1, on_hand=3, available=2),),
    }


def test_lines_for_the_same_sku_are_reserved_as_one() -> None:
    items = stock(MUG=5)
    reservation = given()

    reservation.reserve([StockLine("MUG", 2), StockLine("MUG", 3)], items)

    assert reservation.pending_events == (InventoryReserved(ORDER, (StockLine("MUG", 5),)),)
    assert items["MUG"].available == 0


def test_one_short_sku_reserves_nothing_and_names_the_shortage() -> None:
    items = stock(MUG=5, TEE=0)
    reservation = given()

    reservation.reserve(LINES, items)

    assert reservation.pending_events == (
        InventoryReservationFailed(ORDER, (Shortage("TEE", requested=1, available=0),)),
    )
    assert pending(items) == {}


def test_an_unknown_sku_counts_as_short() -> None:
    items = stock(MUG=5)
    reservation = given()

    reservation.reserve([StockLine("MUG", 1), StockLine("GHOST", 2)], items)

    assert reservation.pending_events == (
        InventoryReservationFailed(ORDER, (Shortage("GHOST", requested=2, available=0),)),
    )
    assert pending(items) == {}


def test_stock_held_by_other_orders_is_not_available() -> None:
    items = stock(MUG=5)
    items["MUG"].replay([StockReserved("MUG", "order-0", 4, 5, 1)])

    given().reserve([StockLine("MUG", 2)], items)

    assert pending(items) == {}


@pytest.mark.parametrize(
    "history",
    [
        (RESERVED,),
        (InventoryReservationFailed(ORDER, ()),),
        (RESERVED, InventoryReleased(ORDER, LINES)),
    ],
)
def test_reserving_a_decided_reservation_again_records_nothing(history: tuple[Event, ...]) -> None:
    items = stock(MUG=5, TEE=3)
    reservation = given(*history)

    reservation.reserve(LINES, items)

    assert reservation.pending_events == ()
    assert pending(items) == {}


@pytest.mark.parametrize("lines", [(), (StockLine("MUG", 0),), (StockLine("MUG", -1),)])
def test_reserving_needs_lines_with_positive_quantities(lines: tuple[StockLine, ...]) -> None:
    with pytest.raises(DomainError) as error:
        given().reserve(lines, stock(MUG=5))
    assert error.value.code == "invalid"


def test_releasing_returns_every_lines_stock() -> None:
    items = reserved_stock()
    reservation = given(RESERVED)

    reservation.release(items)

    assert reservation.pending_events == (InventoryReleased(ORDER, LINES),)
    assert pending(items) == {
        "MUG": (StockReleased("MUG", ORDER, 2, on_hand=5, available=5),),
        "TEE": (StockReleased("TEE", ORDER, 1, on_hand=3, available=3),),
    }


@pytest.mark.parametrize(
    "history",
    [
        (),
        (InventoryReservationFailed(ORDER, ()),),
        (RESERVED, InventoryReleased(ORDER, LINES)),
        (RESERVED, ReservationCommitted(ORDER, LINES)),
    ],
    ids=["unknown", "failed", "released", "committed"],
)
def test_releasing_a_reservation_that_holds_nothing_records_nothing(
    history: tuple[Event, ...],
) -> None:
    items = stock(MUG=5, TEE=3)
    reservation = given(*history)

    reservation.release(items)

    assert reservation.pending_events == ()
    assert pending(items) == {}


def test_committing_takes_exactly_the_reserved_stock_off_hand() -> None:
    items = reserved_stock()
    reservation = given(RESERVED)

    reservation.commit(items)

    assert reservation.pending_events == (ReservationCommitted(ORDER, LINES),)
    assert pending(items) == {
        "MUG": (StockCommitted("MUG", ORDER, 2, on_hand=3, available=3),),
        "TEE": (StockCommitted("TEE", ORDER, 1, on_hand=2, available=2),),
    }
    assert [(i.on_hand, i.reserved) for i in items.values()] == [(3, 0), (2, 0)]


def test_committing_twice_records_nothing_the_second_time() -> None:
    reservation = given(RESERVED, ReservationCommitted(ORDER, LINES))

    reservation.commit(stock(MUG=3, TEE=2))

    assert reservation.pending_events == ()


@pytest.mark.parametrize(
    "history",
    [(), (InventoryReservationFailed(ORDER, ()),), (RESERVED, InventoryReleased(ORDER, LINES))],
    ids=["unknown", "failed", "released"],
)
def test_committing_a_reservation_that_holds_nothing_is_rejected(
    history: tuple[Event, ...],
) -> None:
    items = stock(MUG=5, TEE=3)

    with pytest.raises(DomainError) as error:
        given(*history).commit(items)
    assert error.value.code == "not_reserved"
    assert pending(items) == {}


@pytest.mark.parametrize(
    "history",
    [
        (RESERVED,),
        (InventoryReservationFailed(ORDER, (Shortage("TEE", requested=1, available=0),)),),
        (RESERVED, InventoryReleased(ORDER, LINES)),
        (RESERVED, ReservationCommitted(ORDER, LINES)),
    ],
)
def test_a_snapshot_restores_the_same_reservation(history: tuple[Event, ...]) -> None:
    reservation = given(*history)

    restored = Reservation.from_snapshot(
        ORDER, reservation.version, stored(reservation.snapshot_state())
    )

    assert vars(restored) == vars(reservation)
    assert restored.status is reservation.status  # the enum member, not its string
