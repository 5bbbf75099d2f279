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
    ReturnRestocked,
    Shortage,
    StockCommitted,
    StockLine,
    StockReleased,
    StockReserved,
    StockReturned,
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


# --- shipments of some lines, and returns ------------------------------------------

MUG_SHIPPED = ReservationCommitted(ORDER, (StockLine("MUG", 1),), "ship-1", complete=False)
SHIPPED_ALL = ReservationCommitted(ORDER, LINES)


def partly_shipped_stock() -> dict[str, StockItem]:
    items = reserved_stock()
    items["MUG"].replay([StockCommitted("MUG", ORDER, 1, 4, 3)])
    return items


def test_a_shipment_of_some_lines_commits_just_those_units() -> None:
    items = reserved_stock()
    reservation = given(RESERVED)

    reservation.commit(items, [StockLine("MUG", 1)], "ship-1")

    assert reservation.pending_events == (MUG_SHIPPED,)
    assert pending(items) == {"MUG": (StockCommitted("MUG", ORDER, 1, on_hand=4, available=3),)}
    assert reservation.still_reserved == (StockLine("MUG", 1), StockLine("TEE", 1))
    assert reservation.status == "reserved"


def test_the_shipment_that_takes_the_last_units_completes_the_reservation() -> None:
    items = partly_shipped_stock()
    reservation = given(RESERVED, MUG_SHIPPED)

    reservation.commit(items, [StockLine("TEE", 1), StockLine("MUG", 1)], "ship-2")

    assert reservation.pending_events == (
        ReservationCommitted(ORDER, (StockLine("TEE", 1), StockLine("MUG", 1)), "ship-2"),
    )
    assert reservation.status == "committed"
    assert [(i.on_hand, i.reserved) for i in items.values()] == [(3, 0), (2, 0)]


def test_committing_everything_after_a_shipment_commits_what_is_left() -> None:
    items = partly_shipped_stock()
    reservation = given(RESERVED, MUG_SHIPPED)

    reservation.commit(items)

    assert reservation.pending_events == (
        ReservationCommitted(ORDER, (StockLine("MUG", 1), StockLine("TEE", 1))),
    )
    assert pending(items) == {
        "MUG": (StockCommitted("MUG", ORDER, 1, on_hand=3, available=3),),
        "TEE": (StockCommitted("TEE", ORDER, 1, on_hand=2, available=2),),
    }


def test_the_same_shipment_again_commits_nothing() -> None:
    items = partly_shipped_stock()
    reservation = given(RESERVED, MUG_SHIPPED)

    reservation.commit(items, [StockLine("MUG", 1)], "ship-1")

    assert reservation.pending_events == ()
    assert pending(items) == {}


@pytest.mark.parametrize(
    ("history", "lines"),
    [
        ((RESERVED, MUG_SHIPPED), [StockLine("MUG", 2)]),  # one of two is left
        ((RESERVED,), [StockLine("MUG", 1), StockLine("MUG", 2)]),  # 3 of 2, in two lines
        ((RESERVED,), [StockLine("CAP", 1)]),  # never reserved
        ((RESERVED, SHIPPED_ALL), [StockLine("MUG", 1)]),
        ((RESERVED, InventoryReleased(ORDER, LINES)), [StockLine("MUG", 1)]),
    ],
    ids=["more than left", "merged lines", "other sku", "committed", "released"],
)
def test_shipping_more_than_is_still_reserved_is_rejected(
    history: tuple[Event, ...], lines: list[StockLine]
) -> None:
    items = partly_shipped_stock()

    with pytest.raises(DomainError) as error:
        given(*history).commit(items, lines, "ship-9")

    assert error.value.code == "not_reserved"
    assert pending(items) == {}


def test_releasing_after_a_shipment_frees_only_what_did_not_ship() -> None:
    items = partly_shipped_stock()
    reservation = given(RESERVED, MUG_SHIPPED)

    reservation.release(items)

    left = (StockLine("MUG", 1), StockLine("TEE", 1))
    assert reservation.pending_events == (InventoryReleased(ORDER, left),)
    assert pending(items) == {
        "MUG": (StockReleased("MUG", ORDER, 1, on_hand=4, available=4),),
        "TEE": (StockReleased("TEE", ORDER, 1, on_hand=3, available=3),),
    }


def test_returned_goods_go_back_on_hand() -> None:
    items = stock(MUG=3, TEE=2)
    reservation = given(RESERVED, SHIPPED_ALL)

    reservation.take_back("ret-1", [StockLine("MUG", 2)], items)

    assert reservation.pending_events == (ReturnRestocked(ORDER, "ret-1", (StockLine("MUG", 2),)),)
    assert pending(items) == {
        "MUG": (StockReturned("MUG", ORDER, "ret-1", 2, on_hand=5, available=5),)
    }


def test_the_same_return_again_restocks_nothing() -> None:
    items = stock(MUG=5, TEE=2)
    reservation = given(
        RESERVED, SHIPPED_ALL, ReturnRestocked(ORDER, "ret-1", (StockLine("MUG", 2),))
    )

    reservation.take_back("ret-1", [StockLine("MUG", 2)], items)

    assert reservation.pending_events == ()
    assert pending(items) == {}


@pytest.mark.parametrize(
    ("history", "lines"),
    [
        ((RESERVED, MUG_SHIPPED), [StockLine("MUG", 2)]),  # one shipped
        ((RESERVED, MUG_SHIPPED), [StockLine("TEE", 1)]),  # not shipped yet
        (
            (RESERVED, SHIPPED_ALL, ReturnRestocked(ORDER, "ret-1", (StockLine("MUG", 2),))),
            [StockLine("MUG", 1)],  # both came back already
        ),
        ((RESERVED, InventoryReleased(ORDER, LINES)), [StockLine("MUG", 1)]),
        ((), [StockLine("MUG", 1)]),
    ],
    ids=["more than shipped", "unshipped sku", "returned already", "released", "unknown"],
)
def test_returning_more_than_shipped_and_not_returned_is_rejected(
    history: tuple[Event, ...], lines: list[StockLine]
) -> None:
    items = stock(MUG=5, TEE=3)

    with pytest.raises(DomainError) as error:
        given(*history).take_back("ret-2", lines, items)

    assert error.value.code == "not_shipped"
    assert pending(items) == {}


def test_a_return_needs_an_id_and_positive_quantities() -> None:
    reservation = given(RESERVED, SHIPPED_ALL)

    with pytest.raises(DomainError) as unnamed:
        reservation.take_back(" ", [StockLine("MUG", 1)], stock(MUG=3))
    with pytest.raises(DomainError) as nothing:
        reservation.take_back("ret-1", [StockLine("MUG", 0)], stock(MUG=3))

    assert (unnamed.value.code, nothing.value.code) == ("invalid", "invalid")


@pytest.mark.parametrize(
    "history",
    [
        (RESERVED,),
        (InventoryReservationFailed(ORDER, (Shortage("TEE", requested=1, available=0),)),),
        (RESERVED, InventoryReleased(ORDER, LINES)),
        (RESERVED, ReservationCommitted(ORDER, LINES)),
        (RESERVED, MUG_SHIPPED),
        (
            RESERVED,
            MUG_SHIPPED,
            InventoryReleased(ORDER, (StockLine("MUG", 1), StockLine("TEE", 1))),
        ),
        (RESERVED, SHIPPED_ALL, ReturnRestocked(ORDER, "ret-1", (StockLine("TEE", 1),))),
    ],
)
def test_a_snapshot_restores_the_same_reservation(history: tuple[Event, ...]) -> None:
    reservation = given(*history)

    restored = Reservation.from_snapshot(
        ORDER, reservation.version, stored(reservation.snapshot_state())
    )

    assert vars(restored) == vars(reservation)
    assert restored.status is reservation.status  # the enum member, not its string
