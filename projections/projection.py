"""What every read model offers the read side: subscribers per generation and cleanup."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from redis import Redis
from sqlalchemy import Connection, text

from kernel import parking
from kernel.driver import autocommit
from kernel.event_store import Checkpoint, RecordedEvent
from kernel.handlers import EventHandlers
from kernel.subscriptions import PostgresSubscriber, Subscriber, read_checkpoint
from kernel.write_batch import WriteBatch
from projections import generations

Mode = Literal["sync", "async"]

PostgresHandlers = EventHandlers[[WriteBatch, int, RecordedEvent], None]
"""A PostgreSQL read model's handlers: `(event, writes, generation, recorded)` queues the
statements of one event's effect on one generation.

The statements of a whole batch go out together, in order, so a handler cannot
read a result back: decisions that depend on stored rows are made in SQL.
"""


class Projection(Protocol):
    """A read model: rebuilt into numbered generations, queried from the active one.

    `sync` projections are also applied inside each command's transaction, so
    their handlers must be idempotent per stream version. `version` is its module's
    VERSION: a generation built with an older one is rebuilt (projections.generations).
    """

    name: str
    mode: Mode
    version: int

    @property
    def store(self) -> Literal["postgres", "redis"]: ...

    def subscriber(self, generation: int) -> Subscriber: ...

    def purge(self, conn: Connection, generation: int) -> None:
        """Delete everything a retired generation stored, its checkpoints and partitions
        included."""


def forget_subscription(conn: Connection, name: str) -> None:
    """Delete a subscription's checkpoints, partition leases and parked keys (a retired
    generation's)."""
    parking.forget(conn, name)
    conn.execute(text("DELETE FROM subscriptions WHERE name = :name"), {"name": name})
    conn.execute(text("DELETE FROM subscription_partitions WHERE name = :name"), {"name": name})


def delete_keys(redis: Redis, pattern: str) -> None:
    """Delete every Redis key matching `pattern` (a retired Redis generation's), a thousand
    at a time: SCAN, never KEYS, so Redis keeps serving meanwhile."""
    batch = []
    for key in redis.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            redis.delete(*batch)
            batch.clear()
    if batch:
        redis.delete(*batch)


class PostgresProjection:
    store: Literal["postgres"] = "postgres"

    def __init__(
        self,
        name: str,
        tables: Sequence[str],
        handlers: PostgresHandlers,
        mode: Mode = "async",
        *,
        version: int,
        sync_safe: bool = False,
    ) -> None:
        if mode == "sync" and not sync_safe:
            raise ValueError(
                f"{name} cannot be synchronous: its handlers are not idempotent per stream version"
            )
        self.name = name
        self.tables = tuple(tables)
        self.handlers = handlers
        self.mode = mode
        self.version = version

    def subscriber(self, generation: int) -> PostgresGeneration:
        return PostgresGeneration(self, generation)

    def apply_in_transaction(
        self, conn: Connection, generation: int, events: Sequence[RecordedEvent]
    ) -> None:
        """Write the effect of `events` on `generation` inside the caller's transaction
        (a command's, for sync projections, or a runner's batch), in one round trip."""
        writes = WriteBatch(conn)
        for recorded in events:
            handler = self.handlers.of(recorded.type)
            if handler is not None:
                handler(recorded.event, writes, generation, recorded)
        writes.flush()

    def purge(self, conn: Connection, generation: int) -> None:
        for table in self.tables:
            conn.execute(text(f"DELETE FROM {table} WHERE generation = :g"), {"g": generation})
        forget_subscription(conn, self.subscriber(generation).name)


class PostgresGeneration(PostgresSubscriber):
    """One generation of a PostgreSQL read model, fed by the subscription runner."""

    def __init__(self, projection: PostgresProjection, generation: int) -> None:
        self.projection = projection
        self.generation = generation
        self.name = f"{projection.name}@{generation}"
        self.event_types = projection.handlers.types

    def checkpoint(self, conn: Connection, partition: int = 0) -> Checkpoint:
        with autocommit(conn):
            generations.ensure_live(conn, self.projection.name, self.generation)
            return read_checkpoint(conn, self.name, partition)

    def handle_batch(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        self.projection.apply_in_transaction(conn, self.generation, events)
