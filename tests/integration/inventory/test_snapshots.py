"""Stock items and reservations get snapshots; loading from one equals replaying the
whole stream."""

from __future__ import annotations

from sqlalchemy import text

from config.bootstrap import Application
from inventory.commands import (
    CommitReservation,
    ReleaseInventory,
    ReservationLine,
    ReserveInventory,
)
from inventory.domain import Reservation, StockItem
from inventory.events import ReservationCommitted, StockLine
from kernel.results import Success
from tests.integration.inventory.conftest import AddProductFn, LoadFn, StreamFn
from tests.integration.snapshots import replay_stream, snapshot_of, snapshotting_bus, uow_load


def test_a_long_stock_stream_is_snapshotted_and_loads_like_a_full_replay(
    application: Application, add_product: AddProductFn, stock_item: LoadFn
) -> None:
    add_product("HOT", 500)
    for n in range(110):
        application.bus.dispatch(ReserveInventory(f"o-{n}", (ReservationLine("HOT", 1 + n % 3),)))
        if n % 10 == 0:
            application.bus.dispatch(ReleaseInventory(f"o-{n}"))

    with application.engine.connect() as conn:
        snapshot_version, snapshot_state = conn.execute(
            text("SELECT version, state FROM snapshots WHERE stream_id = 'stock_item-HOT'")
        ).one()
        history = application.store.read_stream(conn, "stock_item-HOT")
    replayed = StockItem("HOT")
    replayed.replay(recorded.event for recorded in history)
    loaded = stock_item("HOT")
    every = application.bus.snapshot_interval
    last_taken = len(history) // every * every
    up_to_snapshot = StockItem("HOT")
    up_to_snapshot.replay(recorded.event for recorded in history[:last_taken])

    assert len(history) > 100
    assert snapshot_version == last_taken
    assert snapshot_state == up_to_snapshot.snapshot_state()
    assert loaded.version == replayed.version == len(history)
    assert loaded.snapshot_state() == replayed.snapshot_state()
    assert (loaded.on_hand, loaded.reserved, loaded.available) == (
        replayed.on_hand, replayed.reserved, replayed.available,
    )  # fmt: skip


def test_a_reservation_snapshot_and_the_event_after_it_load_like_a_full_replay(
    application: Application, add_product: AddProductFn, stock_item: LoadFn, stream: StreamFn
) -> None:
    add_product("MUG", 10)
    add_product("TEE", 5)
    lines = (ReservationLine("TEE", 1), ReservationLine("MUG", 2))
    reserved = snapshotting_bus(application, interval=1).dispatch(ReserveInventory("o-1", lines))
    assert isinstance(reserved, Success), reserved

    # A reservation's stream is at most two events long. The application's bus, which
    # snapshots less often, appends the second, so a load reads the snapshot and one event.
    assert application.bus.snapshot_interval > 2
    committed = application.bus.dispatch(CommitReservation("o-1"))

    assert isinstance(committed, Success), committed
    assert stream(Reservation.stream_for("o-1"))[-1] == ReservationCommitted(
        "o-1", (StockLine("TEE", 1), StockLine("MUG", 2))
    )
    assert (stock_item("MUG").on_hand, stock_item("TEE").on_hand) == (8, 4)
    version, state = snapshot_of(application, Reservation.stream_for("o-1"))
    assert version == 1
    assert state == replay_stream(application, Reservation, "o-1", up_to=1).snapshot_state()
    from_snapshot = uow_load(application, Reservation, "o-1")
    full = replay_stream(application, Reservation, "o-1")
    assert from_snapshot.version == full.version == 2
    assert vars(from_snapshot) == vars(full)
