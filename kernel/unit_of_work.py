"""One command's work: loads aggregates and appends their events in one transaction."""

from __future__ import annotations

import uuid
from typing import TypeVar

from sqlalchemy import Connection, text

from kernel.aggregate import Aggregate
from kernel.errors import NotFound
from kernel.event_store import EventStore, RecordedEvent, Snapshot
from kernel.messages import Metadata

A = TypeVar("A", bound=Aggregate)

# Advisory-lock namespace for streams (subscriptions use another).
STREAM_LOCKS = 1


class UnitOfWork:
    """Handlers load aggregates through it and save them back.

    Loading takes a transaction-scoped lock on the stream, so writers of one hot
    stream queue up instead of failing on version conflicts; the expected-version
    check on append still guards correctness. Lock streams in a stable order
    (sorted ids) when a command touches several.
    """

    def __init__(
        self,
        conn: Connection,
        store: EventStore,
        metadata: Metadata,
        *,
        snapshot_interval: int = 100,
    ) -> None:
        self.conn = conn
        self.store = store
        self.metadata = metadata
        self.snapshot_interval = snapshot_interval
        self.recorded: list[RecordedEvent] = []

    def load(self, cls: type[A], aggregate_id: str, *, lock: bool = True) -> A | None:
        """The aggregate rebuilt from snapshot + later events, or None if it has no events.

        `lock=False` reads without queueing behind writers, for aggregates the
        command only looks at and never saves.
        """
        stream_id = cls.stream_for(aggregate_id)
        if lock:
            self.conn.execute(
                text("SELECT pg_advisory_xact_lock(:ns, hashtext(:stream_id))"),
                {"ns": STREAM_LOCKS, "stream_id": stream_id},
            )
        aggregate = None
        snapshot = None
        if cls.supports_snapshots():
            snapshot = self.store.load_snapshot(self.conn, stream_id)
        if snapshot is not None and snapshot.schema_version == cls.snapshot_version:
            aggregate = cls.from_snapshot(aggregate_id, snapshot.version, snapshot.state)
        after = aggregate.version if aggregate else 0
        history = self.store.read_stream(self.conn, stream_id, after)
        if aggregate is None:
            if not history:
                return None
            aggregate = cls(aggregate_id)
        aggregate.replay(recorded.event for recorded in history)
        return aggregate

    def get(self, cls: type[A], aggregate_id: str, *, lock: bool = True) -> A:
        aggregate = self.load(cls, aggregate_id, lock=lock)
        if aggregate is None:
            raise NotFound(f"{cls.stream_type} {aggregate_id} does not exist")
        return aggregate

    def save(self, aggregate: Aggregate) -> None:
        """Append the aggregate's pending events; snapshot when it crosses an interval."""
        pending = aggregate.pending_events
        if not pending:
            return
        base = aggregate.version
        events = [
            (event, self.metadata.caused(self._event_id(aggregate.stream_id, base + offset)))
            for offset, event in enumerate(pending, start=1)
        ]
        self.recorded += self.store.append(
            self.conn,
            stream_id=aggregate.stream_id,
            stream_type=aggregate.stream_type,
            expected_version=base,
            events=events,
        )
        aggregate.mark_saved()
        interval = aggregate.snapshot_every or self.snapshot_interval
        if aggregate.supports_snapshots() and base // interval < aggregate.version // interval:
            snapshot = Snapshot(
                aggregate.stream_id, aggregate.version, aggregate.snapshot_version,
                aggregate.snapshot_state(),
            )  # fmt: skip
            self.store.save_snapshot(self.conn, aggregate.stream_type, snapshot)

    def _event_id(self, stream_id: str, version: int) -> str:
        # Derived from the command, so a retried command records the same ids.
        name = f"{self.metadata.message_id}/{stream_id}/{version}"
        return str(uuid.uuid5(uuid.NAMESPACE_URL, name))
