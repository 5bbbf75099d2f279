"""Checkpointed catch-up subscriptions over the event log, in partitions.

A subscriber (a projection or a process manager) applies batches of events in
log order and stores its checkpoint atomically with what it applied, in its own
store. It runs as partitions (see kernel.partitions): each has its own checkpoint,
reads only its events, and is drained by one runner at a time, the holder of its
lease (see kernel.leases). The runner reads gap-free batches below the horizon (see
kernel.horizon) and stops at the first event a subscriber cannot apply, recording
the error: it never skips an event. When the same event fails `park_after` runs in a
row, its key (the order it is about) is parked for that subscriber (see kernel.parking):
the key's events are passed over and recorded, to be applied when an operator retries
the key, and the partition goes on with every other key.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from sqlalchemy import Connection, Engine, text

from kernel import parking
from kernel.driver import autocommit
from kernel.errors import CheckpointMoved, Fenced, ParkedKeyBusy, Retired, StillFailing
from kernel.event_store import (
    PARKED,
    START,
    Checkpoint,
    EventStore,
    RecordedEvent,
    UndecodableEvent,
)
from kernel.horizon import RunningWriter, horizon_and_writers, running_writers
from kernel.leases import (
    Held,
    Lease,
    Leases,
    PartitionHolding,
    default_holder,
    recorded_count,
)
from kernel.logging import bind_correlation
from kernel.partitions import slots_of

log = logging.getLogger("kernel.subscriptions")

WRITER_WAIT = 0.002
WRITER_WAITS = 10
"""How long and how often a drain that found nothing looks again while an event writer
holds the horizon (writers take milliseconds; a stuck one is named in the status)."""


class Subscriber(Protocol):
    """A named reader of the log.

    Contract: `apply` stores the effect of the events in `events` (all of the lease's
    partition) together with the checkpoint of the last one it applied, atomically,
    and only while `lease` holds (a PostgreSQL subscriber confirms it in the same
    transaction). If it raises, nothing after the stored checkpoint was written.
    Applying events at or before the stored checkpoint changes nothing. `checkpoint`
    returns a partition's last stored checkpoint (START when there is none).
    """

    name: str

    @property
    def event_types(self) -> frozenset[str] | None:
        """The stored type names of the events it handles (None: every type). Events of
        other types reach `apply` without payload or metadata, only to be passed over."""

    def checkpoint(self, conn: Connection, partition: int = 0) -> Checkpoint: ...

    def apply(
        self,
        conn: Connection,
        events: Sequence[RecordedEvent],
        lease: Lease,
        after: Checkpoint | None = None,
    ) -> None:
        """`after` is the checkpoint the batch was read after: when the stored one differs,
        raise CheckpointMoved and write nothing. Raise Fenced if the lease was lost."""

    def apply_parked(
        self,
        conn: Connection,
        events: Sequence[RecordedEvent],
        lease: Lease,
        settle: Callable[[Connection], object],
    ) -> None:
        """Store the effect of parked `events` (at or before the checkpoint, which stays
        where it is) while `lease` holds, and call `settle(conn)` in the PostgreSQL
        transaction that stores it (for another store, one right after)."""


class PostgresSubscriber:
    """Base for subscribers whose state lives in PostgreSQL beside their checkpoint.

    Subclasses set `name` and `event_types` and implement `handle(conn, event)`, or
    `handle_batch` to write a whole batch at once; the batch, the partition's checkpoint
    and the lease's renewal commit in one transaction on the runner's connection.
    """

    name: str
    event_types: frozenset[str] | None
    appends_to_its_log = False  # a read model: see SubscriptionRunner._drain

    def handle(self, conn: Connection, recorded: RecordedEvent) -> None:
        raise NotImplementedError

    def handle_batch(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        for recorded in events:
            self.handle(conn, recorded)

    def checkpoint(self, conn: Connection, partition: int = 0) -> Checkpoint:
        with autocommit(conn):
            return read_checkpoint(conn, self.name, partition)

    def apply(
        self,
        conn: Connection,
        events: Sequence[RecordedEvent],
        lease: Lease,
        after: Checkpoint | None = None,
    ) -> None:
        with conn.begin():
            current = read_checkpoint(conn, self.name, lease.partition, for_update=True)
            if after is not None and current != after:
                raise CheckpointMoved(f"{self.name} is at {current.token()}, not {after.token()}")
            fresh = [recorded for recorded in events if recorded.checkpoint > current]
            self.handle_batch(conn, fresh)
            if fresh:
                store_checkpoint(conn, self.name, lease.partition, fresh[-1].checkpoint)
            lease.confirm(conn)

    def apply_parked(
        self,
        conn: Connection,
        events: Sequence[RecordedEvent],
        lease: Lease,
        settle: Callable[[Connection], object],
    ) -> None:
        with conn.begin():
            self.handle_batch(conn, events)
            settle(conn)
            lease.confirm(conn)


_CHECKPOINT = (
    "SELECT transaction_id, position FROM subscriptions WHERE name = :name AND partition = :p"
)
_READ_CHECKPOINT = text(_CHECKPOINT)
_READ_CHECKPOINT_FOR_UPDATE = text(_CHECKPOINT + " FOR UPDATE")
_STORE_CHECKPOINT = text(
    """
    INSERT INTO subscriptions (name, partition, transaction_id, position, updated_at)
    VALUES (:name, :p, :tx, :position, now())
    ON CONFLICT (name, partition) DO UPDATE SET transaction_id = EXCLUDED.transaction_id,
        position = EXCLUDED.position, updated_at = EXCLUDED.updated_at
    """
)


def read_checkpoint(
    conn: Connection, name: str, partition: int = 0, *, for_update: bool = False
) -> Checkpoint:
    query = _READ_CHECKPOINT_FOR_UPDATE if for_update else _READ_CHECKPOINT
    row = conn.execute(query, {"name": name, "p": partition}).first()
    return Checkpoint(row[0], row[1]) if row else START


def store_checkpoint(conn: Connection, name: str, partition: int, checkpoint: Checkpoint) -> None:
    params = {
        "name": name,
        "p": partition,
        "tx": checkpoint.transaction_id,
        "position": checkpoint.position,
    }
    conn.execute(_STORE_CHECKPOINT, params)


@dataclass(frozen=True, slots=True)
class RunReport:
    name: str
    applied: int
    checkpoint: Checkpoint
    busy: bool = False  # another runner held a partition (it was marked wanted)
    error: str | None = None
    caught_up: bool = False  # reached the visible end of the log (not stopped by the clock)
    fenced: bool = False  # a lease was lost mid-drain; its new holder carries on
    busy_until: datetime | None = None  # when the busy partition's lease runs out


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    partition: int
    checkpoint: Checkpoint
    lag_events: int
    lag_seconds: float
    state: str  # "caught_up", "running" or "failed"
    holder: str | None
    lease_expires_at: datetime | None
    unheld_seconds: float | None  # how long it has had no holder (None: held)
    failed_position: int | None = None
    last_error: str | None = None
    failed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionStatus:
    """A subscription over all its partitions: `checkpoint` is the least of theirs, the lag
    their sum (events) and the largest (seconds), the state the worst."""

    name: str
    checkpoint: Checkpoint
    head: Checkpoint
    lag_events: int
    lag_seconds: float
    state: str  # "caught_up", "running" or "failed"
    failed_position: int | None
    last_error: str | None
    failed_at: datetime | None
    partitions: list[PartitionStatus] = field(default_factory=list)
    parked_keys: int = 0  # keys whose events it passes over (see kernel.parking)

    def stranded(self, bound: float) -> list[PartitionStatus]:
        """Partitions with work that have had no holder for longer than `bound` seconds."""
        return [
            p
            for p in self.partitions
            if p.lag_events and p.unheld_seconds is not None and p.unheld_seconds > bound
        ]


class SubscriptionRunner:
    """Drains subscribers' partitions, each under a lease this runner takes.

    `partitions` is how many partitions a subscription gets when it first runs; one
    that already runs keeps its recorded count (see docs/DESIGN.md to change it). A key
    is parked once one of its events failed `park_after` runs in a row.
    """

    def __init__(
        self,
        engine: Engine,
        store: EventStore,
        *,
        batch_size: int = 1000,
        partitions: int = 1,
        lease_seconds: float = 5.0,
        holder: str | None = None,
        park_after: int = 3,
    ) -> None:
        if park_after < 1:
            raise ValueError("park_after counts failed runs: at least 1")
        self.engine = engine
        self.store = store
        self.batch_size = batch_size
        self.park_after = park_after
        self.default_partitions = partitions
        self.leases = Leases(holder or default_holder(), lease_seconds)
        self._counts: dict[str, int] = {}  # a subscription's partition count never changes

    @property
    def lease_seconds(self) -> float:
        return self.leases.seconds

    def partitions(self, conn: Connection, subscriber: Subscriber) -> int:
        """The subscriber's partition count, recorded on first use (raises Retired for a
        retired read-model generation, which must not be recorded again)."""
        with autocommit(conn):
            found = recorded_count(conn, subscriber.name)
        if found is None:
            subscriber.checkpoint(conn, 0)
            with conn.begin():
                found = self.leases.partitions(conn, subscriber.name, self.default_partitions)
        self._counts[subscriber.name] = found
        return found

    def _partition_count(self, conn: Connection, subscriber: Subscriber) -> int:
        """`partitions`, remembered: a subscription's count never changes while it runs (a
        partition found missing later is recorded again, see `_run_partition`)."""
        count = self._counts.get(subscriber.name)
        return self.partitions(conn, subscriber) if count is None else count

    def run(
        self,
        subscriber: Subscriber,
        *,
        partition: int | None = None,
        of: int | None = None,
        max_seconds: float | None = None,
        wait_for_lock: float = 0,
    ) -> RunReport:
        """Drain one partition of the subscriber (every one, in turn, when `partition` is
        None) from its checkpoint to the log's visible end.

        `partition` counts `of` partitions (the subscriber's own count by default): when
        the subscriber was recorded with another count, the partitions holding the
        same slots are drained. A partition another runner holds is marked wanted, so
        its holder drains again before letting go, and reported `busy` once
        `wait_for_lock` seconds have passed. `max_seconds` bounds one call so a job
        never hogs a worker.
        """
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        with self.engine.connect() as conn:
            for remembered in (True, False):
                try:
                    if remembered:
                        count = self._partition_count(conn, subscriber)
                    else:  # its partitions were deleted and recorded again since
                        count = self.partitions(conn, subscriber)
                    reports = [
                        self._run_partition(conn, subscriber, p, deadline, wait_for_lock)
                        for p in _covering(partition, of or count, count)
                    ]
                except Retired:
                    return RunReport(subscriber.name, 0, START, caught_up=True)
                except _Unrecorded:
                    continue
                return _combined(subscriber.name, reports)
        return RunReport(subscriber.name, 0, START, caught_up=True)

    def _run_partition(
        self,
        conn: Connection,
        subscriber: Subscriber,
        partition: int,
        deadline: float | None,
        wait: float,
    ) -> RunReport:
        checkpoint = subscriber.checkpoint(conn, partition)
        if not wait and self._nothing_new(conn, subscriber, partition, checkpoint):
            return RunReport(subscriber.name, 0, checkpoint, caught_up=True)
        lease = self._take(conn, subscriber.name, partition, wait)
        if lease is None:  # its rows are gone: a retired generation, or deleted by hand
            self._counts.pop(subscriber.name, None)
            raise _Unrecorded(subscriber.name)
        if isinstance(lease, Held):
            return RunReport(subscriber.name, 0, START, busy=True, busy_until=lease.expires_at)
        applied = 0
        known: Checkpoint | None = checkpoint
        parked = set(lease.parked)  # only this lease's holder parks or unparks its keys
        try:
            while True:
                report = self._drain(conn, subscriber, lease, parked, deadline, known)
                applied += report.applied
                known = None  # read again if the partition was wanted meanwhile
                if report.fenced or report.error or not report.caught_up:
                    break
                with autocommit(conn):
                    again = self.leases.release(conn, lease)
                if not again:
                    return _with_applied(report, applied)
            if report.fenced:
                return _with_applied(report, applied)
            with autocommit(conn):
                if self.leases.release(conn, lease):
                    self.leases.release(conn, lease)  # the next job drains what was wanted
            return _with_applied(report, applied)
        except BaseException:
            _let_go(conn, self.leases, lease)
            raise

    def _take(
        self, conn: Connection, name: str, partition: int, wait: float
    ) -> Lease | Held | None:
        give_up = time.monotonic() + wait
        while True:
            with autocommit(conn):
                lease = self.leases.take(conn, name, partition)
            if not isinstance(lease, Held) or time.monotonic() >= give_up:
                return lease
            time.sleep(0.05)

    def _nothing_new(
        self, conn: Connection, subscriber: Subscriber, partition: int, checkpoint: Checkpoint
    ) -> bool:
        """Whether a look, without taking the lease, finds nothing to apply: no event past
        the checkpoint below the horizon, and no event writer holding the horizon. A job
        woken for a partition that one of its subscriptions has no new events in leaves
        that one at that (events committed since wake another job)."""
        count = self._counts.get(subscriber.name) or self.default_partitions
        with autocommit(conn):
            below, writing = horizon_and_writers(conn)
            if writing:
                return False
            try:
                found = self.store.read_all(
                    conn, checkpoint, 1, (), slots=slots_of(partition, count), below=below
                )
            except UndecodableEvent:
                return False
        return not found

    def _drain(
        self,
        conn: Connection,
        subscriber: Subscriber,
        lease: Lease,
        parked: set[str],
        deadline: float | None,
        checkpoint: Checkpoint | None = None,
    ) -> RunReport:
        """From the partition's checkpoint (`checkpoint`, if just read) to the visible end,
        passing over the events of the `parked` keys (and adding a key it parks)."""
        name = subscriber.name
        try:
            if checkpoint is None:
                checkpoint = subscriber.checkpoint(conn, lease.partition)
        except Retired:
            return RunReport(name, 0, START, caught_up=True)
        applied = 0
        caught_up = False
        slots = lease.slots
        waits = 0
        while deadline is None or time.monotonic() < deadline:
            undecodable = None
            try:
                with autocommit(conn):  # the horizon, then the events: two statements
                    below, writing = horizon_and_writers(conn)
                    batch = self.store.read_all(
                        conn, checkpoint, self.batch_size, subscriber.event_types,
                        slots=slots, below=below, parked=parked,
                    )  # fmt: skip
            except UndecodableEvent as bad:
                batch, undecodable = bad.readable, bad
            if not batch and undecodable is None:
                if writing and waits < WRITER_WAITS:
                    # A writer still running holds the horizon: its commit, a moment away,
                    # may free events of this partition that committed after it began and
                    # whose own wake-up found the partition held. Look again shortly.
                    waits += 1
                    time.sleep(WRITER_WAIT)
                    continue
                caught_up = True
                break
            if batch:
                held = [recorded for recorded in batch if recorded.type == PARKED]
                try:
                    if held:  # recorded before the checkpoint passes them
                        with conn.begin():
                            lease.confirm(conn)
                            parking.hold(conn, name, held)
                    subscriber.apply(conn, batch, lease, checkpoint)
                except Fenced:
                    log.warning("lease lost mid-drain", extra=_where(name, lease))
                    return RunReport(name, applied, checkpoint, fenced=True)
                except CheckpointMoved:
                    log.warning(
                        "checkpoint moved under the runner",
                        extra=_where(name, lease) | {"expected": checkpoint.token()},
                    )
                    checkpoint = subscriber.checkpoint(conn, lease.partition)
                    continue
                except Exception:
                    done, error, key = self._apply_singly(
                        conn, subscriber, lease, batch, checkpoint
                    )
                    applied += done
                    checkpoint = batch[done - 1].checkpoint if done else checkpoint
                    if key is not None:
                        parked.add(key)
                        continue  # its events are passed over from now on
                    return RunReport(name, applied, checkpoint, error=error, fenced=error is None)
                applied += len(batch)
                checkpoint = batch[-1].checkpoint
                if len(batch) < self.batch_size and not _rereads(subscriber):
                    # The visible end of the log when it was read. Whoever commits after
                    # that queues a job, which finds the partition held and marks it
                    # wanted: the release below drains again. No need to read once more.
                    caught_up = undecodable is None
                    if caught_up:
                        break
            if undecodable is not None:
                log.error(
                    "subscription stopped at an event it cannot read",
                    extra=_where(name, lease)
                    | {"position": undecodable.checkpoint.position, "error": undecodable.reason},
                )
                attempts = _record_failure(
                    conn, name, lease.partition, undecodable.checkpoint, undecodable.reason
                )
                failing = _Failing(
                    undecodable.checkpoint, undecodable.key, undecodable.type_name,
                    undecodable.reason, attempts,
                )  # fmt: skip
                if self._park(conn, name, lease, failing):
                    parked.add(undecodable.key)
                    continue
                return RunReport(name, applied, checkpoint, error=undecodable.reason)
        if applied and lease.failed:
            _clear_failure(conn, name, lease.partition)
        return RunReport(name, applied, checkpoint, caught_up=caught_up)

    def _apply_singly(
        self,
        conn: Connection,
        subscriber: Subscriber,
        lease: Lease,
        batch: Sequence[RecordedEvent],
        after: Checkpoint,
    ) -> tuple[int, str | None, str | None]:
        """Apply up to the failing event, then record the failure at it, and park its key
        if it failed `park_after` runs in a row: (applied, error, the key parked or None).
        (0, None, None) or (n, None, None) when the lease or the checkpoint moved: the
        next run carries on."""
        for done, recorded in enumerate(batch):
            try:
                subscriber.apply(conn, [recorded], lease, after)
            except (CheckpointMoved, Fenced):
                return done, None, None
            except Exception as exc:
                error = "".join(traceback.format_exception_only(exc)).strip()
                with bind_correlation(
                    recorded.metadata.correlation_id, recorded.metadata.message_id
                ):
                    log.error(
                        "subscription stopped at a failing event",
                        exc_info=True,
                        extra=_where(subscriber.name, lease)
                        | {"position": recorded.position, "event_type": recorded.type},
                    )
                attempts = _record_failure(
                    conn, subscriber.name, lease.partition, recorded.checkpoint, error
                )
                failing = _Failing(
                    recorded.checkpoint, recorded.key, recorded.type, error, attempts
                )
                if self._park(conn, subscriber.name, lease, failing):
                    return done, error, recorded.key
                return done, error, None
            after = recorded.checkpoint
        return len(batch), "the batch failed but each event applied alone", None

    def _park(self, conn: Connection, name: str, lease: Lease, failing: _Failing) -> bool:
        """Park the failing event's key once it failed `park_after` runs in a row."""
        if failing.attempts < self.park_after or not failing.key:
            return False
        try:
            with conn.begin():
                lease.confirm(conn)
                parking.park(
                    conn, name, lease.partition, failing.checkpoint, key=failing.key,
                    event_type=failing.type_name, error=failing.error, attempts=failing.attempts,
                )  # fmt: skip
                conn.execute(_CLEAR_FAILURE, {"name": name, "p": lease.partition})
        except Fenced:
            return False
        log.error(
            "parked a key: the subscription passes over its events until it is retried",
            extra=_where(name, lease)
            | {"key": failing.key, "position": failing.checkpoint.position},
        )
        return True

    def retry(self, subscriber: Subscriber, key: str, actor: str, reason: str = "") -> int:
        """Apply a parked key's events in log order (after a fix) and let its later events
        flow; how many applied. Raises StillFailing if they failed again (the key stays
        parked, with the new error), LookupError if the key is not parked for the
        subscriber, ParkedKeyBusy if its partition's holder did not let go in time."""
        name = subscriber.name
        with self.engine.connect() as conn:
            lease = self._lease_of_parked(conn, name, key)
            try:
                with autocommit(conn):
                    events = self.store.read_events(conn, parking.held_events(conn, name, key))
                settle = partial(
                    parking.unpark, subscription=name, key=key, action="retried", actor=actor,
                    reason=reason,
                )  # fmt: skip
                subscriber.apply_parked(conn, events, lease, settle)
            except Fenced as lost:
                raise ParkedKeyBusy(f"{name} lost partition {lease.partition}'s lease") from lost
            except Exception as exc:
                if conn.in_transaction():
                    conn.rollback()
                error = "".join(traceback.format_exception_only(exc)).strip()
                log.warning(
                    "a parked key failed again",
                    exc_info=True,
                    extra=_where(name, lease) | {"key": key},
                )
                with conn.begin():
                    parking.failed_again(conn, name, key, actor, error)
                raise StillFailing(error) from exc
            finally:
                _let_go(conn, self.leases, lease)
        log.info("retried a parked key", extra={"subscription": name, "key": key, "actor": actor})
        return len(events)

    def skip(self, subscriber: Subscriber, key: str, actor: str, reason: str) -> int:
        """Drop a parked key's events unapplied (the read model or process never sees
        them) and let its later events flow; how many were dropped. Raises as `retry`."""
        name = subscriber.name
        with self.engine.connect() as conn:
            lease = self._lease_of_parked(conn, name, key)
            try:
                with conn.begin():
                    lease.confirm(conn)
                    dropped = parking.unpark(conn, name, key, "skipped", actor, reason)
            except Fenced as lost:
                raise ParkedKeyBusy(f"{name} lost partition {lease.partition}'s lease") from lost
            finally:
                _let_go(conn, self.leases, lease)
        log.warning(
            "skipped a parked key",
            extra={"subscription": name, "key": key, "actor": actor, "reason": reason},
        )
        return dropped

    def _lease_of_parked(self, conn: Connection, name: str, key: str) -> Lease:
        """The lease of the partition `key` is parked in: while it is held, no runner
        parks or passes over the key's events."""
        with autocommit(conn):
            found = parking.find(conn, name, key)
        if found is None:
            raise LookupError(f"{key} is not parked for {name}")
        lease = self._take(conn, name, found.partition, max(2 * self.lease_seconds, 1.0))
        if not isinstance(lease, Lease):
            raise ParkedKeyBusy(f"partition {found.partition} of {name} is busy; try again")
        with autocommit(conn):  # parked and unparked only under this lease: look again
            if parking.find(conn, name, key) is None:
                _let_go(conn, self.leases, lease)
                raise LookupError(f"{key} is not parked for {name}")
        return lease

    def status(self, subscribers: Iterable[Subscriber]) -> list[SubscriptionStatus]:
        now = datetime.now(UTC)
        statuses = []
        with self.engine.connect() as conn:
            with conn.begin():
                head, _ = self.store.head(conn)
                parked = parking.counts(conn)
            for subscriber in subscribers:
                try:
                    count = self.partitions(conn, subscriber)
                except Retired:
                    continue
                with conn.begin():
                    holdings = {
                        h.partition: h for h in self.leases.holdings(conn, [subscriber.name])
                    }
                    failures = {
                        row[0]: row[1:]
                        for row in conn.execute(
                            text(
                                "SELECT partition, failed_position, last_error, failed_at"
                                " FROM subscriptions WHERE name = :name"
                                " AND last_error IS NOT NULL"
                            ),
                            {"name": subscriber.name},
                        )
                    }
                partitions = []
                for partition in range(count):
                    try:
                        checkpoint = subscriber.checkpoint(conn, partition)
                    except Retired:
                        break
                    with conn.begin():
                        lag, oldest = self.store.backlog(
                            conn, checkpoint, slots_of(partition, count)
                        )
                    partitions.append(
                        _partition_status(
                            partition,
                            checkpoint,
                            lag,
                            oldest,
                            now,
                            holdings.get(partition),
                            failures.get(partition),
                        )
                    )
                if len(partitions) == count:
                    summed = _summed(subscriber.name, head, partitions)
                    statuses.append(replace(summed, parked_keys=parked.get(subscriber.name, 0)))
        return statuses

    def writers_holding_back(self, older_than: float) -> list[RunningWriter]:
        """Transactions that append events and have run longer than `older_than` seconds:
        every subscription waits for them (see kernel.horizon)."""
        with self.engine.connect() as conn, conn.begin():
            return running_writers(conn, older_than)


def _partition_status(
    partition: int,
    checkpoint: Checkpoint,
    lag: int,
    oldest: datetime | None,
    now: datetime,
    holding: PartitionHolding | None,
    failure: Sequence[object] | None,
) -> PartitionStatus:
    state = "failed" if failure else ("running" if lag else "caught_up")
    lag_seconds = max((now - oldest).total_seconds(), 0.0) if oldest else 0.0
    unheld = None
    if holding is None or holding.holder is None:
        since = holding.free_since if holding else None
        # Never held: unheld for as long as its oldest waiting event has waited.
        unheld = max((now - since).total_seconds(), 0.0) if since else lag_seconds
    return PartitionStatus(
        partition=partition,
        checkpoint=checkpoint,
        lag_events=lag,
        lag_seconds=lag_seconds,
        state=state,
        holder=holding.holder if holding else None,
        lease_expires_at=holding.expires_at if holding else None,
        unheld_seconds=unheld,
        failed_position=failure[0] if failure else None,  # type: ignore[arg-type]
        last_error=failure[1] if failure else None,  # type: ignore[arg-type]
        failed_at=failure[2] if failure else None,  # type: ignore[arg-type]
    )


def _summed(name: str, head: Checkpoint, partitions: list[PartitionStatus]) -> SubscriptionStatus:
    failed = next((p for p in partitions if p.state == "failed"), None)
    lag = sum(p.lag_events for p in partitions)
    return SubscriptionStatus(
        name=name,
        checkpoint=min((p.checkpoint for p in partitions), default=START),
        head=head,
        lag_events=lag,
        lag_seconds=max((p.lag_seconds for p in partitions), default=0.0),
        state="failed" if failed else ("running" if lag else "caught_up"),
        failed_position=failed.failed_position if failed else None,
        last_error=failed.last_error if failed else None,
        failed_at=failed.failed_at if failed else None,
        partitions=partitions,
    )


@dataclass(frozen=True, slots=True)
class _Failing:
    """An event a subscriber failed on, and how many runs in a row it failed."""

    checkpoint: Checkpoint
    key: str
    type_name: str
    error: str
    attempts: int


class _Unrecorded(Exception):
    """A subscription's partition rows were not there (see `SubscriptionRunner.run`)."""


def _covering(partition: int | None, of: int, count: int) -> list[int]:
    """The subscriber's partitions (`count` of them) holding the slots of partition
    `partition` of `of` (every partition for None). Counts divide the slots, so the
    smaller divides the larger."""
    if partition is None:
        return list(range(count))
    if count <= of:
        return [partition % count]
    return list(range(partition % of, count, of))


def _combined(name: str, reports: list[RunReport]) -> RunReport:
    if len(reports) == 1:
        return reports[0]
    busy = [r.busy_until for r in reports if r.busy_until is not None]
    return RunReport(
        name,
        sum(r.applied for r in reports),
        min((r.checkpoint for r in reports), default=START),
        busy=any(r.busy for r in reports),
        error=next((r.error for r in reports if r.error), None),
        caught_up=all(r.caught_up or r.busy for r in reports),
        fenced=any(r.fenced for r in reports),
        busy_until=max(busy) if busy else None,
    )


def _with_applied(report: RunReport, applied: int) -> RunReport:
    return RunReport(
        report.name, applied, report.checkpoint, report.busy, report.error, report.caught_up,
        report.fenced, report.busy_until,
    )  # fmt: skip


def _rereads(subscriber: Subscriber) -> bool:
    """Whether the runner reads again after a short batch: for a subscriber whose own
    commits append events it reads (a process manager), they are there at once; for a
    read model, the read would find nothing. Unknown subscribers are read again."""
    return bool(getattr(subscriber, "appends_to_its_log", True))


def _where(name: str, lease: Lease) -> dict[str, object]:
    return {"subscription": name, "partition": lease.partition, "fence": lease.fence}


def _let_go(conn: Connection, leases: Leases, lease: Lease) -> None:
    """Release after a crash in the drain (or an operator's retry or skip), if the
    connection still works; else the lease runs out on its own."""
    try:
        if conn.in_transaction():
            conn.rollback()
        with conn.begin():
            if leases.release(conn, lease):
                leases.release(conn, lease)
    except Exception:
        log.warning("could not release a lease; it runs out", extra=_where(lease.name, lease))


def _record_failure(conn: Connection, name: str, partition: int, at: Checkpoint, error: str) -> int:
    """Record the failure at `at`; how many runs in a row failed there."""
    with autocommit(conn):
        return int(
            conn.execute(
                text(
                    """
                INSERT INTO subscriptions (name, partition, failed_transaction_id,
                                           failed_position, last_error, failed_at,
                                           failed_attempts)
                VALUES (:name, :p, :tx, :position, :error, now(), 1)
                ON CONFLICT (name, partition) DO UPDATE
                SET failed_transaction_id = EXCLUDED.failed_transaction_id,
                    failed_position = EXCLUDED.failed_position, last_error = EXCLUDED.last_error,
                    failed_at = EXCLUDED.failed_at,
                    failed_attempts = CASE
                        WHEN subscriptions.failed_position = EXCLUDED.failed_position
                        THEN subscriptions.failed_attempts + 1 ELSE 1 END
                RETURNING failed_attempts
                """
                ),
                {
                    "name": name,
                    "p": partition,
                    "tx": at.transaction_id,
                    "position": at.position,
                    "error": error,
                },
            ).scalar_one()
        )


_CLEAR_FAILURE = text(
    "UPDATE subscriptions SET failed_transaction_id = NULL, failed_position = NULL,"
    " last_error = NULL, failed_at = NULL, failed_attempts = 0"
    " WHERE name = :name AND partition = :p AND last_error IS NOT NULL"
)


def _clear_failure(conn: Connection, name: str, partition: int) -> None:
    with autocommit(conn):
        conn.execute(_CLEAR_FAILURE, {"name": name, "p": partition})
