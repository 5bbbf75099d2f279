"""Loading aggregates: one statement each, never a stale read after waiting for the lock,
and a state kept in memory only as far as the log confirms it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, text

from config.bootstrap import Application
from kernel.aggregate_cache import AggregateCache
from kernel.command_bus import CommandBus
from kernel.errors import NotFound
from kernel.event_store import EventStore
from kernel.messages import Metadata
from kernel.unit_of_work import UnitOfWork
from tests.support.tally import Count, OpenTally, Tally


@contextmanager
def statements(conn: Connection) -> Iterator[list[str]]:
    """The statements run on `conn`'s psycopg connection (the unit of work skips
    SQLAlchemy's layers)."""
    seen: list[str] = []
    driver = conn.connection.driver_connection
    execute = psycopg.Cursor.execute

    def noted(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        if cursor.connection is driver:
            seen.append(str(query))
        return execute(cursor, query, *args, **kwargs)

    psycopg.Cursor.execute = noted  # type: ignore[method-assign,assignment]
    try:
        yield seen
    finally:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]


def _waiting_for_a_lock(application: Application) -> bool:
    with application.engine.connect() as conn:
        waiting = conn.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        ).scalar_one()
    return bool(waiting)


def test_a_load_is_one_statement_with_or_without_the_lock(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    bus.dispatch(OpenTally("t-1", "books"))
    for amount in range(1, 15):  # a snapshot at 10, four events after it
        bus.dispatch(Count("t-1", amount))

    with application.engine.begin() as conn, statements(conn) as seen:
        locked = UnitOfWork(conn, store, Metadata()).get(Tally, "t-1")
        unlocked = UnitOfWork(conn, store, Metadata()).get(Tally, "t-1", lock=False)

    assert len(seen) == 2
    assert vars(locked) == vars(unlocked)
    assert (locked.total, locked.counts, locked.version) == (105, 14, 15)


def test_a_load_that_waited_for_the_lock_sees_what_its_holder_committed(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    bus.dispatch(OpenTally("t-1", "books"))
    loaded: list[Tally] = []

    def second_writer() -> None:
        with application.engine.begin() as conn:
            loaded.append(UnitOfWork(conn, store, Metadata()).get(Tally, "t-1"))

    with application.engine.begin() as conn:
        uow = UnitOfWork(conn, store, Metadata())
        tally = uow.get(Tally, "t-1")
        tally.count(5)
        uow.save(tally)
        waiter = threading.Thread(target=second_writer)
        waiter.start()
        deadline = time.monotonic() + 5
        while not _waiting_for_a_lock(application):
            assert time.monotonic() < deadline, "the second writer never queued for the lock"
            time.sleep(0.01)
    waiter.join(timeout=5)

    (after_wait,) = loaded
    assert (after_wait.version, after_wait.total) == (2, 5)


def test_a_snapshot_of_another_schema_is_ignored(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    bus.dispatch(OpenTally("t-1", "books"))
    for amount in range(1, 12):
        bus.dispatch(Count("t-1", amount))
    with application.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE snapshots SET schema_version = 99, state = '{}'"
                " WHERE stream_id = 'tally-t-1'"
            )
        )

    with application.engine.begin() as conn:
        tally = UnitOfWork(conn, store, Metadata()).get(Tally, "t-1")

    assert (tally.title, tally.total, tally.counts, tally.version) == ("books", 66, 11, 12)


def test_an_aggregate_without_events_loads_as_none(
    application: Application, store: EventStore
) -> None:
    with application.engine.begin() as conn:
        uow = UnitOfWork(conn, store, Metadata())
        assert uow.load(Tally, "nobody") is None
        assert uow.load(Tally, "nobody", lock=False) is None


def test_require_checks_existence_like_get(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    bus.dispatch(OpenTally("t-1", "books"))

    with application.engine.begin() as conn:
        uow = UnitOfWork(conn, store, Metadata())
        uow.require(Tally, "t-1")
        with pytest.raises(NotFound) as missing:
            uow.require(Tally, "t-2")
        with pytest.raises(NotFound) as by_get:
            uow.get(Tally, "t-2")

    assert str(missing.value) == str(by_get.value) == "tally t-2 does not exist"


class KeptTally(Tally):
    """A Tally its loads keep in memory, as StockItem is."""

    kept_in_memory = True


def _kept_load(application: Application, store: EventStore, cache: AggregateCache) -> Tally:
    with application.engine.begin() as conn:
        return UnitOfWork(conn, store, Metadata(), snapshot_interval=10, cache=cache).get(
            KeptTally, "t-1"
        )


def test_a_kept_state_loads_again_with_only_the_events_since(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    bus.dispatch(OpenTally("t-1", "books"))
    for amount in range(1, 5):
        bus.dispatch(Count("t-1", amount))
    cache = AggregateCache()
    first = _kept_load(application, store, cache)
    for amount in range(5, 14):  # a snapshot at 10 meanwhile: it is not read, so spoil it
        bus.dispatch(Count("t-1", amount))
    with application.engine.begin() as conn:
        conn.execute(text("UPDATE snapshots SET state = state || '{\"total\": -1}'"))

    with application.engine.begin() as conn, statements(conn) as seen:
        again = UnitOfWork(conn, store, Metadata(), snapshot_interval=10, cache=cache).get(
            KeptTally, "t-1"
        )

    assert (first.version, first.total) == (5, 10)
    assert len(seen) == 1
    assert (again.version, again.total, again.counts) == (14, 91, 13)
    kept = cache.get("tally-t-1")
    assert kept is not None and (kept.version, kept.state["total"]) == (14, 91)


def test_a_snapshot_well_ahead_of_a_kept_state_is_read_instead(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    bus.dispatch(OpenTally("t-1", "books"))
    cache = AggregateCache()
    _kept_load(application, store, cache)
    for amount in range(1, 25):  # snapshots at 10 and 20: 20 is past 1 + the interval
        bus.dispatch(Count("t-1", amount))

    again = _kept_load(application, store, cache)

    assert (again.version, again.total, again.counts) == (25, 300, 24)


def test_a_state_kept_from_a_transaction_that_rolled_back_is_not_trusted(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    """A load inside a transaction sees its own writes; if it rolls back, another writer's
    events take those versions, and the kept state must not stand for them."""
    bus.dispatch(OpenTally("t-1", "books"))
    cache = AggregateCache()
    with pytest.raises(RuntimeError), application.engine.begin() as conn:
        uow = UnitOfWork(conn, store, Metadata(), cache=cache)
        tally = uow.get(KeptTally, "t-1")
        tally.count(1000)
        uow.save(tally)
        assert uow.get(KeptTally, "t-1").total == 1000  # kept at version 2, uncommitted
        raise RuntimeError("roll back")
    bus.dispatch(Count("t-1", 7))

    reloaded = _kept_load(application, store, cache)

    assert (reloaded.version, reloaded.total) == (2, 7)


def test_an_aggregate_saved_twice_before_a_flush_appends_both_in_order(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    bus.dispatch(OpenTally("t-1", "books"))

    with application.engine.begin() as conn:
        uow = UnitOfWork(conn, store, Metadata(), write_behind=True)
        tally = uow.get(Tally, "t-1")
        tally.count(2)
        uow.save(tally)
        tally.count(3)
        uow.save(tally)  # the first save is appended before this one is queued
        uow.flush()

    assert [recorded.version for recorded in uow.recorded] == [2, 3]
    with application.engine.connect() as conn:
        reloaded = UnitOfWork(conn, store, Metadata()).get(Tally, "t-1", lock=False)
    assert (reloaded.version, reloaded.total) == (3, 5)


def test_a_state_kept_from_a_log_since_emptied_is_not_trusted_at_a_reused_position(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    """A log emptied with its positions restarted (as the test suites do between tests;
    a restore from a backup does the like) hands the same versions and positions to
    other events: the kept state must not stand for them."""
    bus.dispatch(OpenTally("t-1", "books"))
    bus.dispatch(Count("t-1", 1000))
    cache = AggregateCache()
    assert _kept_load(application, store, cache).total == 1000
    with application.engine.begin() as conn:
        conn.execute(text("TRUNCATE events, snapshots, processed_commands RESTART IDENTITY"))
    bus.dispatch(OpenTally("t-1", "books"))
    bus.dispatch(Count("t-1", 7))  # version 2 at the same position as the kept one's

    reloaded = _kept_load(application, store, cache)

    assert (reloaded.version, reloaded.total) == (2, 7)
