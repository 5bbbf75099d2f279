"""Checkpointed catch-up subscriptions over the event log.

A subscriber (a projection or a process manager) applies batches of events in
log order and stores its checkpoint atomically with what it applied, in its own
store. The runner reads gap-free batches, holds a PostgreSQL advisory lock so
one runner per name works at a time, and stops at the first event a subscriber
cannot apply, recording the error: it never skips an event.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from kernel.errors import CheckpointMoved, Retired
from kernel.event_store import START, Checkpoint, EventStore, RecordedEvent, UndecodableEvent
from kernel.logging import bind_correlation

# Advisory-lock namespace for subscriptions (streams use 1).
SUBSCRIPTION_LOCKS = 2
LOCK_NOT_AVAILABLE = "55P03"

log = logging.getLogger("kernel.subscriptions")


class Subscriber(Protocol):
    """A named reader of the log.

    Contract: `apply` stores the effect of the events in `events` together with
    the checkpoint of the last one it applied, atomically (a read model writes the
    whole batch at once; a process manager may commit event by event). If it
    raises, nothing after the stored checkpoint was written. Applying events at or
    before the stored checkpoint changes nothing. `checkpoint` returns the last
    stored checkpoint (START when there is none).
    """

    name: str

    @property
    def event_types(self) -> frozenset[str] | None:
        """The stored type names of the events it handles (None: every type). Events of
        other types reach `apply` without payload or metadata, only to be passed over."""

    def checkpoint(self, conn: Connection) -> Checkpoint: ...

    def apply(
        self, conn: Connection, events: Sequence[RecordedEvent], after: Checkpoint | None = None
    ) -> None:
        """`after` is the checkpoint the batch was read after: when the stored one differs,
        raise CheckpointMoved and write nothing."""


class PostgresSubscriber:
    """Base for subscribers whose state lives in PostgreSQL beside their checkpoint.

    Subclasses set `name` and `event_types` and implement `handle(conn, event)`, or
    `handle_batch` to write a whole batch at once; the batch and the checkpoint commit
    in one transaction on the runner's (lock-holding) connection.
    """

    name: str
    event_types: frozenset[str] | None

    def handle(self, conn: Connection, recorded: RecordedEvent) -> None:
        raise NotImplementedError

    def handle_batch(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for recorded in events:
            self.handle(conn, recorded)

    def checkpoint(self, conn: Connection) -> Checkpoint:
        with conn.begin():
            return read_checkpoint(conn, self.name)

    def apply(
        self, conn: Connection, events: Sequence[RecordedEvent], after: Checkpoint | None = None
    ) -> None:
        with conn.begin():
            current = read_checkpoint(conn, self.name, for_update=True)
            if after is not None and current != after:
                raise CheckpointMoved(f"{self.name} is at {current.token()}, not {after.token()}")
            fresh = [recorded for recorded in events if recorded.checkpoint > current]
            self.handle_batch(conn, fresh)
            if fresh:
                store_checkpoint(conn, self.name, fresh[-1].checkpoint)


def read_checkpoint(conn: Connection, name: str, *, for_update: bool = False) -> Checkpoint:
    query = "SELECT transaction_id, position FROM subscriptions WHERE name = :name"
    row = conn.execute(text(query + (" FOR UPDATE" if for_update else "")), {"name": name}).first()
    return Checkpoint(row[0], row[1]) if row else START


def store_checkpoint(conn: Connection, name: str, checkpoint: Checkpoint) -> None:
    conn.execute(
        text(
            """
            INSERT INTO subscriptions (name, transaction_id, position, updated_at)
            VALUES (:name, :tx, :position, now())
            ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id,
                position = EXCLUDED.position, updated_at = EXCLUDED.updated_at
            """
        ),
        {"name": name, "tx": checkpoint.transaction_id, "position": checkpoint.position},
    )


@dataclass(frozen=True, slots=True)
class RunReport:
    name: str
    applied: int
    checkpoint: Checkpoint
    busy: bool = False
    error: str | None = None
    caught_up: bool = False  # reached the visible end of the log (not stopped by the clock)


@dataclass(frozen=True, slots=True)
class SubscriptionStatus:
    name: str
    checkpoint: Checkpoint
    head: Checkpoint
    lag_events: int
    lag_seconds: float
    state: str  # "caught_up", "running" or "failed"
    failed_position: int | None
    last_error: str | None
    failed_at: datetime | None


class SubscriptionRunner:
    def __init__(self, engine: Engine, store: EventStore, *, batch_size: int = 1000) -> None:
        self.engine = engine
        self.store = store
        self.batch_size = batch_size

    def run(
        self,
        subscriber: Subscriber,
        *,
        max_seconds: float | None = None,
        wait_for_lock: float = 0,
    ) -> RunReport:
        """Drain the subscriber from its checkpoint to the log's visible end.

        Returns with `busy=True` when another runner holds the name for longer
        than `wait_for_lock` seconds. `max_seconds` bounds one call so a job
        never hogs a worker.
        """
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        with self.engine.connect() as conn:
            if not _lock(conn, subscriber.name, wait_for_lock):
                return RunReport(subscriber.name, 0, START, busy=True)
            try:
                return self._drain(conn, subscriber, deadline)
            finally:
                _unlock(conn, subscriber.name)

    def _drain(self, conn: Connection, subscriber: Subscriber, deadline: float | None) -> RunReport:
        try:
            checkpoint = subscriber.checkpoint(conn)
        except Retired:
            return RunReport(subscriber.name, 0, START)
        applied = 0
        caught_up = False
        while deadline is None or time.monotonic() < deadline:
            undecodable = None
            try:
                with conn.begin():
                    batch = self.store.read_all(
                        conn, checkpoint, self.batch_size, subscriber.event_types
                    )
            except UndecodableEvent as bad:
                batch, undecodable = bad.readable, bad
            if not batch and undecodable is None:
                caught_up = True
                break
            if batch:
                try:
                    subscriber.apply(conn, batch, checkpoint)
                except CheckpointMoved:
                    log.warning(
                        "checkpoint moved under the runner",
                        extra={"subscription": subscriber.name, "expected": checkpoint.token()},
                    )
                    checkpoint = subscriber.checkpoint(conn)
                    continue
                except Exception:
                    done, error = self._apply_singly(conn, subscriber, batch, checkpoint)
                    applied += done
                    checkpoint = batch[done - 1].checkpoint if done else checkpoint
                    return RunReport(subscriber.name, applied, checkpoint, error=error)
                applied += len(batch)
                checkpoint = batch[-1].checkpoint
            if undecodable is not None:
                log.error(
                    "subscription stopped at an event it cannot read",
                    extra={
                        "subscription": subscriber.name,
                        "position": undecodable.checkpoint.position,
                        "error": undecodable.reason,
                    },
                )
                _record_failure(conn, subscriber.name, undecodable.checkpoint, undecodable.reason)
                return RunReport(subscriber.name, applied, checkpoint, error=undecodable.reason)
        if applied:
            _clear_failure(conn, subscriber.name)
        return RunReport(subscriber.name, applied, checkpoint, caught_up=caught_up)

    def _apply_singly(
        self,
        conn: Connection,
        subscriber: Subscriber,
        batch: Sequence[RecordedEvent],
        after: Checkpoint,
    ) -> tuple[int, str | None]:
        """Apply up to the failing event, then record the failure at it."""
        for done, recorded in enumerate(batch):
            try:
                subscriber.apply(conn, [recorded], after)
            except CheckpointMoved:
                return done, None  # the next run starts from the stored checkpoint
            except Exception as exc:
                error = "".join(traceback.format_exception_only(exc)).strip()
                with bind_correlation(
                    recorded.metadata.correlation_id, recorded.metadata.message_id
                ):
                    log.error(
                        "subscription stopped at a failing event",
                        exc_info=True,
                        extra={
                            "subscription": subscriber.name,
                            "position": recorded.position,
                            "event_type": recorded.type,
                        },
                    )
                _record_failure(conn, subscriber.name, recorded.checkpoint, error)
                return done, error
            after = recorded.checkpoint
        return len(batch), "the batch failed but each event applied alone"

    def status(self, subscribers: Iterable[Subscriber]) -> list[SubscriptionStatus]:
        now = datetime.now(UTC)
        statuses = []
        with self.engine.connect() as conn:
            with conn.begin():
                head, _ = self.store.head(conn)
            for subscriber in subscribers:
                try:
                    checkpoint = subscriber.checkpoint(conn)
                except Retired:
                    continue
                with conn.begin():
                    lag, oldest = self.store.backlog(conn, checkpoint)
                    failure = conn.execute(
                        text(
                            "SELECT failed_position, last_error, failed_at FROM subscriptions"
                            " WHERE name = :name AND last_error IS NOT NULL"
                        ),
                        {"name": subscriber.name},
                    ).first()
                state = "failed" if failure else ("running" if lag else "caught_up")
                statuses.append(
                    SubscriptionStatus(
                        name=subscriber.name,
                        checkpoint=checkpoint,
                        head=head,
                        lag_events=lag,
                        lag_seconds=(now - oldest).total_seconds() if oldest else 0.0,
                        state=state,
                        failed_position=failure[0] if failure else None,
                        last_error=failure[1] if failure else None,
                        failed_at=failure[2] if failure else None,
                    )
                )
        return statuses


def _lock(conn: Connection, name: str, wait: float) -> bool:
    params = {"ns": SUBSCRIPTION_LOCKS, "name": name}
    if wait <= 0:
        with conn.begin():
            locked = conn.execute(
                text("SELECT pg_try_advisory_lock(:ns, hashtext(:name))"), params
            ).scalar_one()
        return bool(locked)
    try:
        with conn.begin():
            conn.execute(
                text("SELECT set_config('lock_timeout', :ms, true)"),
                {"ms": f"{int(wait * 1000)}ms"},
            )
            conn.execute(text("SELECT pg_advisory_lock(:ns, hashtext(:name))"), params)
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            return False
        raise
    return True


def _unlock(conn: Connection, name: str) -> None:
    if conn.invalidated or conn.closed:
        return
    if conn.in_transaction():
        conn.rollback()
    with conn.begin():
        conn.execute(
            text("SELECT pg_advisory_unlock(:ns, hashtext(:name))"),
            {"ns": SUBSCRIPTION_LOCKS, "name": name},
        )


def _record_failure(conn: Connection, name: str, at: Checkpoint, error: str) -> None:
    with conn.begin():
        conn.execute(
            text(
                """
                INSERT INTO subscriptions (name, failed_transaction_id, failed_position,
                                           last_error, failed_at)
                VALUES (:name, :tx, :position, :error, now())
                ON CONFLICT (name) DO UPDATE
                SET failed_transaction_id = EXCLUDED.failed_transaction_id,
                    failed_position = EXCLUDED.failed_position, last_error = EXCLUDED.last_error,
                    failed_at = EXCLUDED.failed_at
                """
            ),
            {"name": name, "tx": at.transaction_id, "position": at.position, "error": error},
        )


def _clear_failure(conn: Connection, name: str) -> None:
    with conn.begin():
        conn.execute(
            text(
                "UPDATE subscriptions SET failed_transaction_id = NULL, failed_position = NULL,"
                " last_error = NULL, failed_at = NULL WHERE name = :name AND last_error IS NOT NULL"
            ),
            {"name": name},
        )
