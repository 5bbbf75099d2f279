"""Shipments of some lines and returned goods, through the real command bus: what each
stream records, what the catalog then shows, and the no-ops and refusals."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from config.bootstrap import Application
from inventory.commands import (
    CommitReservation,
    ReleaseInventory,
    ReservationLine,
    ReserveInventory,
    ReturnStock,
)
from inventory.domain import Reservation
from inventory.events import (
    InventoryReleased,
    ReservationCommitted,
    ReturnRestocked,
    StockCommitted,
    StockLine,
    StockReleased,
    StockReturned,
)
from kernel.results import Failure, Success
from tests.integration.inventory.conftest import AddProductFn, LoadFn, StreamFn
from tests.support.event_log import event_count


def lines(**quantities: int) -> tuple[ReservationLine, ...]:
    return tuple(ReservationLine(sku, quantity) for sku, quantity in quantities.items())


def ok(application: Application, command: Any) -> None:
    result = application.bus.dispatch(command)
    assert isinstance(result, Success), result


def catalog_stock(application: Application, sku: str) -> tuple[int, int]:
    """(on hand, available) as the storefront's catalog shows the SKU."""
    with application.engine.connect() as conn:
        row = conn.execute(
            text("SELECT on_hand, available FROM catalog_products WHERE sku = :sku"),
            {"sku": sku},
        ).one()
    return row.on_hand, row.available


@pytest.fixture
def reserved(application: Application, add_product: AddProductFn) -> None:
    """Order o-1 holds 3 mugs and 1 tee; o-2 holds 1 mug (of 5 mugs and 3 tees)."""
    add_product("MUG", 5)
    add_product("TEE", 3)
    ok(application, ReserveInventory("o-1", lines(MUG=3, TEE=1)))
    ok(application, ReserveInventory("o-2", lines(MUG=1)))


@pytest.mark.usefixtures("reserved")
def test_a_shipment_of_some_lines_takes_just_those_units_off_hand(
    application: Application, stream: StreamFn, stock_item: LoadFn
) -> None:
    ok(application, CommitReservation("o-1", lines(MUG=2), "ship-1"))

    assert stream("reservation-o-1")[-1] == ReservationCommitted(
        "o-1", (StockLine("MUG", 2),), "ship-1", complete=False
    )
    assert stream("stock_item-MUG")[-1] == StockCommitted("MUG", "o-1", 2, 3, 1)
    mug = stock_item("MUG")
    assert (mug.on_hand, mug.reserved, mug.reservations) == (3, 2, {"o-1": 1, "o-2": 1})
    assert catalog_stock(application, "MUG") == (3, 1)
    assert len(stream("stock_item-TEE")) == 2  # added, reserved: not shipped yet


@pytest.mark.usefixtures("reserved")
def test_the_rest_ships_with_a_full_commit_and_completes_the_reservation(
    application: Application, stream: StreamFn, stock_item: LoadFn
) -> None:
    ok(application, CommitReservation("o-1", lines(MUG=2), "ship-1"))

    ok(application, CommitReservation("o-1"))
    before = event_count(application)
    ok(application, CommitReservation("o-1"))  # everything is committed: a no-op

    assert stream("reservation-o-1")[-1] == ReservationCommitted(
        "o-1", (StockLine("MUG", 1), StockLine("TEE", 1))
    )
    assert event_count(application) == before
    assert (stock_item("MUG").on_hand, stock_item("TEE").on_hand) == (2, 2)
    assert stock_item("MUG").reservations == {"o-2": 1}


@pytest.mark.usefixtures("reserved")
def test_the_same_shipment_again_writes_nothing(application: Application) -> None:
    ok(application, CommitReservation("o-1", lines(MUG=2), "ship-1"))
    before = event_count(application)

    ok(application, CommitReservation("o-1", lines(MUG=2), "ship-1"))

    assert event_count(application) == before


@pytest.mark.usefixtures("reserved")
@pytest.mark.parametrize(
    "shipped", [lines(MUG=4), lines(TEE=2), lines(CAP=1)], ids=["mugs", "tees", "unknown sku"]
)
def test_shipping_more_than_the_order_still_holds_is_refused_and_writes_nothing(
    application: Application, shipped: tuple[ReservationLine, ...]
) -> None:
    before = event_count(application)

    result = application.bus.dispatch(CommitReservation("o-1", shipped, "ship-9"))

    assert isinstance(result, Failure)
    assert result.code == "not_reserved"
    assert event_count(application) == before


@pytest.mark.usefixtures("reserved")
def test_releasing_after_a_shipment_frees_only_what_did_not_ship(
    application: Application, stream: StreamFn, stock_item: LoadFn
) -> None:
    ok(application, CommitReservation("o-1", lines(MUG=2), "ship-1"))

    ok(application, ReleaseInventory("o-1"))

    left = (StockLine("MUG", 1), StockLine("TEE", 1))
    assert stream("reservation-o-1")[-1] == InventoryReleased("o-1", left)
    assert stream("stock_item-MUG")[-1] == StockReleased("MUG", "o-1", 1, 3, 2)
    assert (stock_item("MUG").available, stock_item("TEE").available) == (2, 3)


@pytest.mark.usefixtures("reserved")
def test_returned_goods_are_back_on_hand_and_in_the_catalog(
    application: Application, stream: StreamFn, stock_item: LoadFn
) -> None:
    ok(application, CommitReservation("o-1"))  # 2 mugs, 2 tees on hand; 1 mug held by o-2

    ok(application, ReturnStock("o-1", "ret-1", lines(MUG=2, TEE=1)))

    assert stream(Reservation.stream_for("o-1"))[-1] == ReturnRestocked(
        "o-1", "ret-1", (StockLine("MUG", 2), StockLine("TEE", 1))
    )
    assert stream("stock_item-MUG")[-1] == StockReturned("MUG", "o-1", "ret-1", 2, 4, 3)
    assert stream("stock_item-TEE")[-1] == StockReturned("TEE", "o-1", "ret-1", 1, 3, 3)
    assert (stock_item("MUG").available, stock_item("TEE").available) == (3, 3)
    assert catalog_stock(application, "MUG") == (4, 3)
    assert catalog_stock(application, "TEE") == (3, 3)


@pytest.mark.usefixtures("reserved")
def test_the_same_return_again_writes_nothing(application: Application) -> None:
    ok(application, CommitReservation("o-1"))
    ok(application, ReturnStock("o-1", "ret-1", lines(MUG=1)))
    before = event_count(application)

    ok(application, ReturnStock("o-1", "ret-1", lines(MUG=1)))

    assert event_count(application) == before


@pytest.mark.usefixtures("reserved")
@pytest.mark.parametrize(
    ("order_id", "returned"),
    [
        ("o-1", lines(MUG=2)),  # 3 shipped, 2 returned already
        ("o-1", lines(TEE=1)),  # never shipped
        ("o-2", lines(MUG=1)),  # reserved, not shipped
        ("o-unknown", lines(MUG=1)),
    ],
    ids=["more than left", "unshipped sku", "unshipped order", "unknown order"],
)
def test_returning_more_than_shipped_and_not_returned_is_refused_and_writes_nothing(
    application: Application, order_id: str, returned: tuple[ReservationLine, ...]
) -> None:
    ok(application, CommitReservation("o-1", lines(MUG=3), "ship-1"))
    ok(application, ReturnStock("o-1", "ret-1", lines(MUG=2)))
    before = event_count(application)

    result = application.bus.dispatch(ReturnStock(order_id, "ret-2", returned))

    assert isinstance(result, Failure)
    assert result.code == "not_shipped"
    assert event_count(application) == before
