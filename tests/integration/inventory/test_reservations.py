"""Reservations through the real command bus: outcomes, no-ops and atomicity."""

from __future__ import annotations

from typing import Any

import pytest

from config.bootstrap import Application
from inventory.commands import (
    CommitReservation,
    ReleaseInventory,
    ReservationLine,
    ReserveInventory,
)
from inventory.events import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ReservationCommitted,
    Shortage,
    StockCommitted,
    StockLine,
    StockReleased,
    StockReserved,
)
from kernel.event_store import EventStore
from kernel.messages import Metadata
from kernel.results import Failure, Success
from tests.integration.inventory.conftest import AddProductFn, LoadFn, StreamFn
from tests.support.event_log import event_count


def reserve(order_id: str, **lines: int) -> ReserveInventory:
    return ReserveInventory(order_id, tuple(ReservationLine(s, q) for s, q in lines.items()))


@pytest.fixture
def mugs_and_tees(add_product: AddProductFn) -> None:
    add_product("MUG", 5)
    add_product("TEE", 3)


@pytest.mark.usefixtures("mugs_and_tees")
def test_reserving_records_the_order_outcome_and_each_skus_stock(
    application: Application, stream: StreamFn, stock_item: LoadFn
) -> None:
    result = application.bus.dispatch(reserve("o-1", MUG=2, TEE=1))

    assert isinstance(result, Success)
    assert result.aggregate_id == "o-1"
    lines = (StockLine("MUG", 2), StockLine("TEE", 1))
    assert stream("reservation-o-1") == [InventoryReserved("o-1", lines)]
    assert stream("stock_item-MUG")[1:] == [StockReserved("MUG", "o-1", 2, 5, 3)]
    assert stream("stock_item-TEE")[1:] == [StockReserved("TEE", "o-1", 1, 3, 2)]
    assert (stock_item("MUG").available, stock_item("TEE").available) == (3, 2)


@pytest.mark.usefixtures("mugs_and_tees")
def test_a_short_sku_is_a_recorded_failure_that_reserves_nothing(
    application: Application, stream: StreamFn
) -> None:
    result = application.bus.dispatch(reserve("o-1", MUG=2, TEE=4, GHOST=1))

    assert isinstance(result, Success)
    assert stream("reservation-o-1") == [
        InventoryReservationFailed("o-1", (Shortage("TEE", 4, 3), Shortage("GHOST", 1, 0)))
    ]
    assert len(stream("stock_item-MUG")) == 1
    assert len(stream("stock_item-TEE")) == 1


@pytest.mark.usefixtures("mugs_and_tees")
def test_reserving_twice_for_an_order_writes_nothing_the_second_time(
    application: Application,
) -> None:
    application.bus.dispatch(reserve("o-1", MUG=2))
    before = event_count(application)

    result = application.bus.dispatch(reserve("o-1", MUG=2))

    assert isinstance(result, Success)
    assert event_count(application) == before


@pytest.mark.usefixtures("mugs_and_tees")
def test_releasing_returns_the_stock_and_a_second_release_writes_nothing(
    application: Application, stream: StreamFn, stock_item: LoadFn
) -> None:
    application.bus.dispatch(reserve("o-1", MUG=2, TEE=3))

    first = application.bus.dispatch(ReleaseInventory("o-1"))
    count = event_count(application)
    second = application.bus.dispatch(ReleaseInventory("o-1"))

    assert isinstance(first, Success)
    assert isinstance(second, Success)
    assert event_count(application) == count
    lines = (StockLine("MUG", 2), StockLine("TEE", 3))
    assert stream("reservation-o-1")[-1] == InventoryReleased("o-1", lines)
    assert stream("stock_item-TEE")[-1] == StockReleased("TEE", "o-1", 3, 3, 3)
    assert [(stock_item(s).on_hand, stock_item(s).available) for s in ("MUG", "TEE")] == [
        (5, 5), (3, 3),
    ]  # fmt: skip


def test_releasing_an_unknown_reservation_writes_nothing(application: Application) -> None:
    result = application.bus.dispatch(ReleaseInventory("o-unknown"))

    assert isinstance(result, Success)
    assert event_count(application) == 0


@pytest.mark.usefixtures("mugs_and_tees")
def test_committing_takes_exactly_the_reserved_stock_off_hand(
    application: Application, stream: StreamFn, stock_item: LoadFn
) -> None:
    application.bus.dispatch(reserve("o-1", MUG=2, TEE=1))
    application.bus.dispatch(reserve("o-2", MUG=1))

    result = application.bus.dispatch(CommitReservation("o-1"))

    assert isinstance(result, Success)
    lines = (StockLine("MUG", 2), StockLine("TEE", 1))
    assert stream("reservation-o-1")[-1] == ReservationCommitted("o-1", lines)
    assert stream("stock_item-MUG")[-1] == StockCommitted("MUG", "o-1", 2, 3, 2)
    mug = stock_item("MUG")
    assert (mug.on_hand, mug.reserved, mug.available) == (3, 1, 2)


@pytest.mark.usefixtures("mugs_and_tees")
def test_committing_twice_writes_nothing_the_second_time(application: Application) -> None:
    application.bus.dispatch(reserve("o-1", MUG=2))
    application.bus.dispatch(CommitReservation("o-1"))
    before = event_count(application)

    result = application.bus.dispatch(CommitReservation("o-1"))

    assert isinstance(result, Success)
    assert event_count(application) == before


@pytest.mark.usefixtures("mugs_and_tees")
def test_committing_a_released_or_unknown_reservation_is_rejected(application: Application) -> None:
    application.bus.dispatch(reserve("o-1", MUG=2))
    application.bus.dispatch(ReleaseInventory("o-1"))
    before = event_count(application)

    released = application.bus.dispatch(CommitReservation("o-1"))
    unknown = application.bus.dispatch(CommitReservation("o-unknown"))

    assert isinstance(released, Failure)
    assert isinstance(unknown, Failure)
    assert (released.code, unknown.code) == ("not_reserved", "not_reserved")
    assert event_count(application) == before


@pytest.mark.usefixtures("mugs_and_tees")
def test_a_writer_winning_on_one_sku_leaves_no_partial_reservation(
    application: Application, stream: StreamFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer takes every TEE before the appends of MUG and TEE go out together:
    MUG's append runs, TEE's fails, and the retry must reserve nothing."""
    append_all = EventStore.append_all
    intruder = StockReserved("TEE", "o-other", 3, 3, 0)
    intruded: list[list[str]] = []

    def append_after_an_intruder(self: EventStore, conn: Any, appends: Any) -> Any:
        streams = [pending.stream_id for pending in appends]
        if "stock_item-TEE" in streams and not intruded:
            intruded.append(streams)
            with application.engine.begin() as other:
                self.append(other, stream_id="stock_item-TEE", stream_type="stock_item",
                            expected_version=1, events=[(intruder, Metadata())])  # fmt: skip
        return append_all(self, conn, appends)

    monkeypatch.setattr(EventStore, "append_all", append_after_an_intruder)

    result = application.bus.dispatch(reserve("o-1", MUG=2, TEE=2))

    assert intruded == [["stock_item-MUG", "stock_item-TEE", "reservation-o-1"]], (
        "MUG was appended in the attempt that lost"
    )
    assert isinstance(result, Success)
    assert stream("reservation-o-1") == [
        InventoryReservationFailed("o-1", (Shortage("TEE", 2, 0),))
    ]
    assert len(stream("stock_item-MUG")) == 1
    assert stream("stock_item-TEE")[1:] == [intruder]
