"""One command's work: loads aggregates and appends their events in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, text

from kernel import driver
from kernel.aggregate import Aggregate
from kernel.aggregate_cache import AggregateCache, Kept
from kernel.errors import NotFound
from kernel.event_store import EventStore, PendingAppend, RecordedEvent, Snapshot
from kernel.messages import Metadata

A = TypeVar("A", bound=Aggregate)

# Advisory-lock namespace for streams (subscriptions use another).
STREAM_LOCKS = 1

# A statement reads with the snapshot taken when it starts, so a load that waits
# for the lock inside its own statement would miss what the holder committed.
# Take the lock if it is free (the read is then current, bar a holder committing
# in the microseconds before: the expected-version check on append catches that);
# otherwise wait for it in the same statement, answer `fresh = false`, and read again.
_TAKE_LOCK = """
    SELECT CASE WHEN pg_try_advisory_xact_lock(:ns, hashtext(:stream_id)) THEN true
        ELSE (SELECT false FROM pg_advisory_xact_lock(:ns, hashtext(:stream_id))) END AS fresh
"""

# Lock (or not), the usable snapshot and the events after it, in one round trip.
# Rows are the stream's later events in order (one row of NULLs if none); the
# snapshot's state rides on the first row only. Nothing is read if not fresh.
# With a state kept in memory at version `kept` (kernel.aggregate_cache), the events
# from `kept` on (that one to check it), unless a snapshot is newer than `skip_to`.
_LOAD = """
    WITH stream_lock AS MATERIALIZED ({lock})
    SELECT stream_lock.fresh, usable.version,
           CASE WHEN row_number() OVER (ORDER BY later.version) = 1 THEN usable.state END,
           later.*
    FROM stream_lock
    LEFT JOIN LATERAL (
        SELECT version, state FROM snapshots
        WHERE stream_lock.fresh AND stream_id = :stream_id AND schema_version = :schema_version
          AND version > :skip_to
    ) AS usable ON true
    LEFT JOIN LATERAL (
        SELECT {columns} FROM events
        WHERE stream_lock.fresh AND stream_id = :stream_id
          AND version >= coalesce(usable.version + 1, :kept)
    ) AS later ON true
    ORDER BY later.version
"""
# A replay needs each event's payload and type, not its place in the log or metadata;
# the position and id of the last one name a state kept in memory.
_REPLAYED = "version, type, schema_version, data, position, metadata ->> 'message_id'"
_LOAD_LOCKED = text(_LOAD.format(lock=_TAKE_LOCK, columns=_REPLAYED))
_LOAD_UNLOCKED = text(_LOAD.format(lock="SELECT true AS fresh", columns=_REPLAYED))

_EXISTS = text("SELECT EXISTS (SELECT FROM events WHERE stream_id = :stream_id)")

# One after another, in the (sorted) order given: unnest yields the array in order.
_LOCK_STREAMS = text(
    "SELECT count(pg_advisory_xact_lock(:ns, hashtext(s)))"
    " FROM unnest(CAST(:streams AS text[])) AS s"
)


def lock_streams(conn: Connection, stream_ids: Iterable[str]) -> None:
    """Take, up front and in sorted order, the stream locks units of work will take later
    in this transaction (they take them again at no cost). For a transaction that runs
    several commands: each locks its own streams in sorted order, but two transactions
    running several each could otherwise take them in crossing orders and deadlock."""
    streams = sorted(set(stream_ids))
    if streams:
        conn.execute(_LOCK_STREAMS, {"ns": STREAM_LOCKS, "streams": streams})


class UnitOfWork:
    """Handlers load aggregates through it and save them back.

    Loading takes a transaction-scoped lock on the stream, so writers of one hot
    stream queue up instead of failing on version conflicts; the expected-version
    check on append still guards correctness. Lock streams in a stable order
    (sorted ids) when a command touches several.

    With `write_behind`, `save` only encodes the events, and `flush` appends everything
    saved since in one round trip (the command bus flushes after the handler has
    decided, and before a load, so reads see the writes). Without it, `save` appends.
    """

    def __init__(
        self,
        conn: Connection,
        store: EventStore,
        metadata: Metadata,
        *,
        snapshot_interval: int = 100,
        write_behind: bool = False,
        cache: AggregateCache | None = None,
    ) -> None:
        self.conn = conn
        self.store = store
        self.metadata = metadata
        self.snapshot_interval = snapshot_interval
        self.write_behind = write_behind
        self.cache = cache
        self.recorded: list[RecordedEvent] = []
        self._pending: list[PendingAppend] = []
        self._snapshots: list[tuple[str, Snapshot]] = []

    def load(self, cls: type[A], aggregate_id: str, *, lock: bool = True) -> A | None:
        """The aggregate rebuilt from snapshot + later events, or None if it has no events.

        `lock=False` reads without queueing behind writers, for aggregates the
        command only looks at and never saves.
        """
        stream_id = cls.stream_for(aggregate_id)
        kept = self.cache.get(stream_id) if self.cache and cls.kept_in_memory else None
        params = {
            "ns": STREAM_LOCKS,
            "stream_id": stream_id,
            # NULL matches no snapshot: the aggregate is rebuilt from its events.
            "schema_version": cls.snapshot_version if cls.supports_snapshots() else None,
            # A kept state is read on from unless a snapshot is well ahead of it.
            "kept": kept.version if kept else 1,
            "skip_to": kept.version + self.snapshot_interval if kept else 0,
        }
        self.flush()
        rows = driver.fetch(self.conn, _LOAD_LOCKED if lock else _LOAD_UNLOCKED, params)
        if not rows[0][0]:  # waited for the lock (not fresh): read what its holder committed
            rows = driver.fetch(self.conn, _LOAD_UNLOCKED, params)
        if kept is not None and rows[0][1] is None and not _confirms(kept, rows):
            assert self.cache is not None
            self.cache.drop(stream_id)  # not a state of the log: read the stream afresh
            params |= {"kept": 1, "skip_to": 0}
            rows = driver.fetch(self.conn, _LOAD_UNLOCKED, params)
            kept = None
        aggregate = self._rebuilt(cls, aggregate_id, rows, kept)
        if aggregate is not None and self.cache is not None and cls.kept_in_memory:
            last_position, last_id = rows[-1][7], rows[-1][8]
            if last_position is not None:
                state = aggregate.snapshot_state()
                self.cache.keep(stream_id, Kept(aggregate.version, last_position, last_id, state))
        return aggregate

    def get(self, cls: type[A], aggregate_id: str, *, lock: bool = True) -> A:
        aggregate = self.load(cls, aggregate_id, lock=lock)
        if aggregate is None:
            raise _missing(cls, aggregate_id)
        return aggregate

    def require(self, cls: type[Aggregate], aggregate_id: str) -> None:
        """Raise NotFound as `get` would, without locking or loading the aggregate
        (for a command that only needs to know it exists)."""
        self.flush()
        found = self.conn.execute(_EXISTS, {"stream_id": cls.stream_for(aggregate_id)})
        if not found.scalar_one():
            raise _missing(cls, aggregate_id)

    def save(self, aggregate: Aggregate) -> None:
        """Append the aggregate's pending events; snapshot when it crosses an interval."""
        pending = aggregate.pending_events
        if not pending:
            return
        if any(queued.stream_id == aggregate.stream_id for queued in self._pending):
            # Saved twice before a flush: the statement's check of the second append's
            # expected version could not see the first's rows, so append those first.
            self.flush()
        base = aggregate.version
        events = [
            (event, self.metadata.caused(self._event_id(aggregate.stream_id, base + offset)))
            for offset, event in enumerate(pending, start=1)
        ]
        self._pending.append(
            self.store.prepare(self.conn, aggregate.stream_id, aggregate.stream_type, base, events)
        )
        aggregate.mark_saved()
        interval = self.snapshot_interval
        if aggregate.supports_snapshots() and base // interval < aggregate.version // interval:
            snapshot = Snapshot(
                aggregate.stream_id, aggregate.version, aggregate.snapshot_version,
                aggregate.snapshot_state(),
            )  # fmt: skip
            self._snapshots.append((aggregate.stream_type, snapshot))
        if not self.write_behind:
            self.flush()

    def flush(self) -> None:
        """Append what was saved and not yet appended, in one round trip (raises
        ConcurrencyError as `EventStore.append` does), then any snapshots it earned."""
        if self._pending:
            appends, self._pending = self._pending, []
            self.recorded += self.store.append_all(self.conn, appends)
        snapshots, self._snapshots = self._snapshots, []
        for stream_type, snapshot in snapshots:
            self.store.save_snapshot(self.conn, stream_type, snapshot)

    def forget_personal_data(self, subject: str) -> None:
        """Destroy `subject`'s key: their sealed personal data reads as erased from now on
        (see kernel.personal_data)."""
        self.store.personal_keys.forget(self.conn, subject)

    def _rebuilt(
        self, cls: type[A], aggregate_id: str, rows: Sequence[Sequence[Any]], kept: Kept | None
    ) -> A | None:
        snapshot_version, state = rows[0][1], rows[0][2]
        if snapshot_version is None and kept is not None:
            snapshot_version, state = kept.version, kept.state
            rows = rows[1:]  # the kept version's own event, read to confirm it
        read = self.store.registry.read
        history = [read(type_name, schema, data)
                   for _, _, _, version, type_name, schema, data, _, _ in rows
                   if version is not None]  # fmt: skip
        if snapshot_version is not None:
            aggregate = cls.from_snapshot(aggregate_id, snapshot_version, state)
        elif history:
            aggregate = cls(aggregate_id)
        else:
            return None
        aggregate.replay(history)
        return aggregate

    def _event_id(self, stream_id: str, version: int) -> str:
        # Derived from the command, so a retried command records the same ids.
        name = f"{self.metadata.message_id}/{stream_id}/{version}"
        return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def _confirms(kept: Kept, rows: Sequence[Sequence[Any]]) -> bool:
    """Whether the first event read is the one the kept state was loaded at."""
    version, position, event_id = rows[0][3], rows[0][7], rows[0][8]
    return (version, position, event_id) == (kept.version, kept.position, kept.event_id)


def _missing(cls: type[Aggregate], aggregate_id: str) -> NotFound:
    return NotFound(f"{cls.stream_type} {aggregate_id} does not exist")
