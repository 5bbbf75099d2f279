"""A hot SKU gets snapshots; loading from one equals replaying the whole stream."""

from __future__ import annotations

from sqlalchemy import text

from config.bootstrap import Application
from inventory.commands import ReleaseInventory, ReservationLine, ReserveInventory
from inventory.domain import StockItem
from tests.integration.inventory.conftest import AddProductFn, LoadFn


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
