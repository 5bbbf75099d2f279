"""Shared by the read-side tests: the log, read model contents, draining, polling.

Read models are compared by their full stored contents, generation column aside.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from redis import Redis
from sqlalchemy import text

from config.bootstrap import Container
from kernel.event_store import START, RecordedEvent
from projections import order_list
from projections.projection import PostgresProjection

T = TypeVar("T")

ASYNC_MODELS = ("order_detail", "sales_analytics", "order_list")
ALL_MODELS = ("catalog", *ASYNC_MODELS)
SCRATCH = 1000  # a generation no query reads: fresh rebuilds to compare against


def event_count(container: Container) -> int:
    with container.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())


def whole_log(container: Container) -> list[RecordedEvent]:
    """Every event, in log order, once every writer has finished (bounded wait)."""

    def read() -> list[RecordedEvent]:
        with container.engine.connect() as conn, conn.begin():
            batch = container.store.read_all(conn, START, 100_000)
        assert len(batch) == event_count(container), "some transaction still holds the log back"
        return batch

    return eventually(read)


def order_events(container: Container, order_id: str) -> list[tuple[str, str, int]]:
    """(type, occurred_at, position) of every event about one order, in log order."""
    with container.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT type, metadata ->> 'occurred_at', position FROM events"
                " WHERE data ->> 'order_id' = :id ORDER BY transaction_id, position"
            ),
            {"id": order_id},
        ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def event_data(container: Container, order_id: str, event_type: str) -> dict[str, Any]:
    with container.engine.connect() as conn:
        data: dict[str, Any] = conn.execute(
            text("SELECT data FROM events WHERE data ->> 'order_id' = :id AND type = :type"),
            {"id": order_id, "type": event_type},
        ).scalar_one()
    return data


def day_of(occurred_at: str) -> date:
    return datetime.fromisoformat(occurred_at).date()


def contents(container: Container, name: str, generation: int) -> dict[str, Any]:
    """Everything one generation of a read model stores, without the generation number."""
    projection = container.read_side.projection(name)
    if isinstance(projection, PostgresProjection):
        with container.engine.connect() as conn:
            found: dict[str, Any] = {}
            for table in projection.tables:
                result = conn.execute(
                    text(f"SELECT * FROM {table} WHERE generation = :g"), {"g": generation}
                ).mappings()
                rows = [{k: v for k, v in row.items() if k != "generation"} for row in result]
                found[table] = sorted(rows, key=repr)
            return found
    return redis_contents(container.redis, order_list.prefix(generation))


def redis_contents(redis: Redis, prefix: str) -> dict[str, Any]:
    """Each key under `prefix` (prefix removed) with its value, by type."""
    found: dict[str, Any] = {}
    client: Any = redis
    for raw in client.scan_iter(match=prefix + "*", count=1000):
        key = raw.decode()[len(prefix) :]
        kind = client.type(raw).decode()
        if kind == "hash":
            found[key] = {k.decode(): v.decode() for k, v in client.hgetall(raw).items()}
        elif kind == "zset":
            found[key] = [(m.decode(), s) for m, s in client.zrange(raw, 0, -1, withscores=True)]
        elif kind == "string":
            found[key] = client.get(raw).decode()
        else:
            found[key] = f"<{kind}>"
    return found


def is_empty(found: dict[str, Any]) -> bool:
    return all(not value for value in found.values())


def drain(container: Container, names: Sequence[str] = ASYNC_MODELS) -> None:
    """Run each read model's subscribers until they have reached the head of the log."""

    def caught_up() -> None:
        for name in names:
            for subscriber in container.read_side.subscribers(name):
                report = container.runner.run(subscriber, wait_for_lock=5)
                assert report.error is None, report.error
                (status,) = container.runner.status([subscriber])
                assert status.lag_events == 0, f"{subscriber.name} is {status.lag_events} behind"

    eventually(caught_up)


def rebuilt_from_zero(container: Container, name: str) -> dict[str, Any]:
    """The read model replayed from the first event into a scratch generation."""
    projection = container.read_side.projection(name)
    subscriber = projection.subscriber(SCRATCH)
    try:

        def replayed() -> None:
            report = container.runner.run(subscriber, wait_for_lock=5)
            assert report.error is None, report.error
            (status,) = container.runner.status([subscriber])
            assert status.lag_events == 0

        eventually(replayed)
        return contents(container, name, SCRATCH)
    finally:
        with container.engine.begin() as conn:
            projection.purge(conn, SCRATCH)


def eventually(check: Callable[[], T], timeout: float = 30, interval: float = 0.05) -> T:
    """`check()`'s value once it stops failing its assertions; its last failure at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)
