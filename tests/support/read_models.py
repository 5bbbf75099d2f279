"""Looking at the read models: what one generation stores, catching subscriptions up,
and a fresh rebuild from the first event to compare a read model with.

Read models are compared by their full stored contents, generation column aside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis import Redis
from sqlalchemy import text

from config.bootstrap import Application
from kernel.subscriptions import Subscriber
from projections import carts, order_list
from projections.projection import PostgresProjection
from tests.support.polling import eventually

ASYNC_MODELS = ("order_detail", "sales_analytics", "order_list", "customer_directory")
ALL_MODELS = ("catalog", *ASYNC_MODELS)
SCRATCH = 9000  # the generation a fresh rebuild goes into for comparison; no query reads it


def contents(application: Application, name: str, generation: int) -> dict[str, Any]:
    """Everything one generation of a read model stores, without the generation number."""
    projection = application.read_side.projection(name)
    if isinstance(projection, PostgresProjection):
        found: dict[str, Any] = {}
        with application.engine.connect() as conn:
            for table in projection.tables:
                result = conn.execute(
                    text(f"SELECT * FROM {table} WHERE generation = :g"), {"g": generation}
                ).mappings()
                rows = [{k: v for k, v in row.items() if k != "generation"} for row in result]
                found[table] = sorted(rows, key=repr)
        return found
    prefix = carts.prefix if name == "carts" else order_list.prefix
    return redis_contents(application.redis, prefix(generation))


def redis_contents(redis: Redis, prefix: str) -> dict[str, Any]:
    """Each key under `prefix` (prefix removed) with its value, by type; partition
    checkpoints aside, as PostgreSQL read models' are."""
    found: dict[str, Any] = {}
    client: Any = redis
    for raw in client.scan_iter(match=prefix + "*", count=1000):
        key = raw.decode()[len(prefix) :]
        if key.startswith("checkpoint:"):
            continue  # where each partition got to, not what the read model holds
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


def drain(application: Application, names: Sequence[str] = ASYNC_MODELS) -> None:
    """Run each read model's subscribers, in this process, until they have reached the
    head of the log."""

    def caught_up() -> None:
        for name in names:
            for subscriber in application.read_side.subscribers(name):
                _catch_up(application, subscriber)

    eventually(caught_up, timeout=30, interval=0.05)


def rebuilt_from_zero(application: Application, name: str) -> dict[str, Any]:
    """The read model replayed from the first event into the scratch generation, by this
    process; the scratch generation is purged again afterwards."""
    projection = application.read_side.projection(name)
    subscriber = projection.subscriber(SCRATCH)
    try:
        eventually(lambda: _catch_up(application, subscriber), timeout=30, interval=0.05)
        return contents(application, name, SCRATCH)
    finally:
        with application.engine.begin() as conn:
            projection.purge(conn, SCRATCH)


def _catch_up(application: Application, subscriber: Subscriber) -> None:
    report = application.runner.run(subscriber, wait_for_lock=5)
    assert report.error is None, report.error
    (status,) = application.runner.status([subscriber])
    assert status.lag_events == 0, f"{subscriber.name} is {status.lag_events} behind"


def lagging(application: Application) -> list[str]:
    """The subscriptions (the saga's and every read model generation's) that are not
    caught up at the head of the log, each with its state, lag and last error."""
    subscribers: list[Subscriber] = [application.saga]
    for name in ALL_MODELS:
        subscribers += application.read_side.subscribers(name)
    behind = []
    for status in application.runner.status(subscribers):
        if status.state != "caught_up" or status.lag_events:
            behind.append(
                f"{status.name}: {status.state}, {status.lag_events} behind"
                f"{' (' + str(status.last_error) + ')' if status.last_error else ''}"
            )
    return behind
