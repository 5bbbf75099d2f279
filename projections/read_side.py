"""The read side as queries and operators see it: freshness, status and rebuilds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

from kernel.event_store import START, Checkpoint, ConsistencyToken, EventStore, RecordedEvent
from kernel.horizon import HELD_BACK_AFTER, RunningWriter
from kernel.leases import recorded_count
from kernel.partitions import partition_of
from kernel.redis_subscriber import RedisSubscriber
from kernel.subscriptions import (
    PostgresSubscriber,
    Subscriber,
    SubscriptionRunner,
    SubscriptionStatus,
)
from projections import generations
from projections.generations import OPERATOR, Build, Generations
from projections.progress import ProgressWatch
from projections.projection import PostgresProjection, Projection


@dataclass(frozen=True, slots=True)
class Freshness:
    """How far a read model is behind the log when a query reads it."""

    generation: int  # the generation the query should read
    lag_events: int
    lag_seconds: float
    stale: bool  # a consistency token was given and the wait for it ran out


class NotInLog(ValueError):
    """A consistency token names no event in the log: no wait would ever see it."""


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    name: str
    store: str
    mode: str
    generation: int
    subscription: SubscriptionStatus
    rebuild: SubscriptionStatus | None  # the generation being rebuilt, if any
    generations: Generations  # with the version and reason each of them is built with
    code_version: int  # the read model's version in this process's code


@dataclass(frozen=True, slots=True)
class RebuildProgress:
    name: str
    generation: int
    applied: int
    lag_events: int
    switched: bool
    error: str | None = None
    needs_version: int | None = None  # built with a newer version than this code's: left alone


@dataclass(frozen=True, slots=True)
class Upgrade:
    started: dict[str, int]  # read model -> the generation a rebuild for its version fills
    rebuilding: list[str]  # every read model with a rebuild under way (started here or not)


_NONE = Generations(1, None)


class ReadSide:
    def __init__(
        self,
        engine: Engine,
        store: EventStore,
        runner: SubscriptionRunner,
        projections: Sequence[Projection],
        *,
        wait_timeout: float = 2.0,
        poll_interval: float = 0.01,
    ) -> None:
        self.engine = engine
        self.store = store
        self.runner = runner
        self.projections = {projection.name: projection for projection in projections}
        self.wait_timeout = wait_timeout
        self.progress = ProgressWatch(self._positions, poll_interval)
        # The generation queries last found active, per read model: a guess each query
        # checks in a round trip it makes anyway (see `_reached`), never trusted blindly.
        self._active: dict[str, int] = {}
        # Partition counts per subscriber name (a generation's count never changes).
        self._partitions: dict[str, int] = {}

    def connect(self) -> Connection:
        """A connection for one query, its freshness check and its reads. Autocommit: each
        statement sees the latest commits, as in a READ COMMITTED transaction, without the
        BEGIN and COMMIT round trips, and a wait for a token sees the checkpoint move."""
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def projection(self, name: str) -> Projection:
        """Raises KeyError for an unknown read model."""
        return self.projections[name]

    def generations(self, name: str) -> Generations:
        with self.connect() as conn:
            return generations.read(conn, name)

    def subscribers(self, name: str) -> list[Subscriber]:
        """The active generation's subscriber, then the one being rebuilt, if any: those
        this process's code may apply events to (none built with a newer version)."""
        projection = self.projection(name)
        writable = self.generations(name).writable(projection.version)
        return [projection.subscriber(generation) for generation in writable]

    def live_subscribers(self, name: str) -> list[Subscriber]:
        """The active generation's subscriber, then the one being rebuilt, if any,
        whatever version they are built with (what status pages watch)."""
        return self._live(name)[1]

    def _live(self, name: str) -> tuple[Generations, list[Subscriber]]:
        projection = self.projection(name)
        current = self.generations(name)
        found = [projection.subscriber(current.active)]
        if current.building is not None:
            found.append(projection.subscriber(current.building))
        return current, found

    def apply_sync(self, conn: Connection, events: Sequence[RecordedEvent]) -> None:
        """Apply a command's events to every synchronous read model, in its transaction."""
        for projection in self.projections.values():
            if projection.mode != "sync" or not isinstance(projection, PostgresProjection):
                continue
            if any(projection.handlers.handles(recorded.type) for recorded in events):
                current = generations.read(conn, projection.name)
                # Not into a generation of a newer version: a worker running that code
                # applies these events within a sweep (see docs/DESIGN.md).
                if current.active in current.writable(projection.version):
                    projection.apply_in_transaction(conn, current.active, events)

    def freshness(
        self, name: str, token: str | None = None, conn: Connection | None = None
    ) -> Freshness:
        """Wait (bounded) until the read model has applied `token`, then measure its lag.

        A malformed token raises ValueError, one naming no event in the log NotInLog, at
        once. Sync read models are fresh at commit. Pass the query's own `conn` (from
        `connect`) to spare a pool checkout.
        """
        wanted = ConsistencyToken.parse(token) if token else None
        projection = self.projection(name)
        if conn is None:
            with self.connect() as own:
                return self._freshness(own, projection, wanted)
        return self._freshness(conn, projection, wanted)

    def _freshness(
        self, conn: Connection, projection: Projection, wanted: ConsistencyToken | None
    ) -> Freshness:
        if projection.mode == "sync":
            return Freshness(generations.read(conn, projection.name).active, 0, 0.0, False)
        stale = False
        generation, checkpoints = self._position(conn, projection)
        if wanted is not None and not _reached(checkpoints, wanted):
            if not self.store.holds(conn, wanted):
                raise NotInLog(f"no event in the log at {wanted}")
            found = self.progress.wait(
                projection.name, lambda position: _reached(position[1], wanted), self.wait_timeout
            )
            if found is None:
                stale = True
                generation, checkpoints = self._position(conn, projection)
            else:
                generation, checkpoints = found
        lag, oldest = self._backlog(conn, checkpoints)
        seconds = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        return Freshness(generation, lag, max(seconds, 0.0), stale)

    def _position(self, conn: Connection, projection: Projection) -> tuple[int, list[Checkpoint]]:
        """The active generation and its partitions' checkpoints (partition p's at p).

        The generation last found active is cached per process, and safe to start from
        because each path confirms it in the round trip that reads the checkpoints anyway:
        in PostgreSQL one statement reads both; in Redis a generation's checkpoint keys
        exist only while it is live (a switch purges the retired generation, checkpoints
        included, before it commits, and runners never write a retired one again), so
        none found sends us to PostgreSQL. A switch is thus seen by the next query.
        """
        name = projection.name
        generation = self._active.get(name)
        if generation is None:
            generation = generations.read(conn, name).active
        while True:
            subscriber = projection.subscriber(generation)
            partitions = range(self._partition_count(conn, subscriber))
            if isinstance(subscriber, PostgresSubscriber):
                active, found = _active_and_checkpoints(conn, name, subscriber, partitions)
            elif isinstance(subscriber, RedisSubscriber):
                found = subscriber.checkpoints(partitions)
                live = any(checkpoint != START for checkpoint in found)
                active = generation if live else generations.read(conn, name).active
            else:
                active = generations.read(conn, name).active
                found = [subscriber.checkpoint(conn, p) for p in partitions]
            if active == generation:
                self._active[name] = generation
                return generation, found
            generation = active  # a rebuild switched since: read the new one's checkpoints

    def _positions(self, names: list[str]) -> dict[str, tuple[int, list[Checkpoint]]]:
        """`_position` of each named read model, on one connection: what the progress
        watch reads for the queries waiting on them."""
        with self.connect() as conn:
            return {name: self._position(conn, self.projection(name)) for name in names}

    def _partition_count(self, conn: Connection, subscriber: Subscriber) -> int:
        count = self._partitions.get(subscriber.name)
        if count is None:
            count = recorded_count(conn, subscriber.name)
            if count is None:
                return self.runner.default_partitions  # not run yet: nothing applied
            self._partitions[subscriber.name] = count
        return count

    def _backlog(
        self, conn: Connection, checkpoints: list[Checkpoint]
    ) -> tuple[int, datetime | None]:
        """Events after the partitions' checkpoints and the oldest one's time. A caught-up
        read model (the usual case) is told by probing each partition's slots just past
        its checkpoint; only one behind pays a count."""
        if not self.store.partitions_behind(conn, checkpoints):
            return 0, None
        return self.store.partition_backlog(conn, checkpoints)

    def writers_holding_back(self, older_than: float = HELD_BACK_AFTER) -> list[RunningWriter]:
        """Event-store writers that have held every subscription back for longer than
        `older_than` seconds (see kernel.horizon)."""
        return self.runner.writers_holding_back(older_than)

    def status(self) -> list[ProjectionStatus]:
        statuses = []
        for name, projection in self.projections.items():
            current, subscribers = self._live(name)
            found = self.runner.status(subscribers)
            statuses.append(
                ProjectionStatus(
                    name=name,
                    store=projection.store,
                    mode=projection.mode,
                    generation=current.active,
                    subscription=found[0],
                    rebuild=found[1] if len(found) > 1 else None,
                    generations=current,
                    code_version=projection.version,
                )
            )
        return statuses

    def start_rebuild(
        self, name: str, requested_by: str | None = None, *, allow_older: bool = False
    ) -> int:
        """Start an operator's rebuild of `name` (or find the one under way), built with
        this code's version; returns its generation. Raises KeyError for an unknown read
        model, generations.OlderCode if this code is older than the active generation's
        unless `allow_older` (rolling a release back)."""
        build = Build(self.projection(name).version, OPERATOR, requested_by)
        with self.engine.begin() as conn:
            return generations.start_rebuild(conn, name, build, allow_older=allow_older)

    def upgrade(self, requested_by: str) -> Upgrade:
        """Start a rebuild of every read model whose active generation was built with an
        older version than this code declares and that has none under way (race-free
        across processes: see generations.upgrade). Cheap when there is nothing to do:
        one read of every read model's generations."""
        with self.connect() as conn:
            known = generations.read_all(conn)
            started = {}
            for name, projection in self.projections.items():
                current = known.get(name)
                due = current is None or (
                    current.building is None
                    and current.built is not None
                    and current.built.version < projection.version
                )
                if not due:
                    continue
                building = generations.upgrade(conn, name, projection.version, requested_by)
                if building is not None:
                    started[name] = building
                    known[name] = generations.read(conn, name)
        rebuilding = [name for name in self.projections if known.get(name, _NONE).building]
        return Upgrade(started, rebuilding)

    def continue_rebuild(self, name: str, max_seconds: float = 30) -> RebuildProgress:
        """Replay into the generation being built; switch to it once it has caught up."""
        projection = self.projection(name)
        current = self.generations(name)
        building = current.building
        if building is None:
            return RebuildProgress(name, current.active, 0, 0, switched=True)
        subscriber = projection.subscriber(building)
        if building not in current.writable(projection.version):
            # Built with a newer version of the read model: that code's workers build it.
            (status,) = self.runner.status([subscriber])
            needs = current.rebuild.version if current.rebuild else None
            return RebuildProgress(name, building, 0, status.lag_events, False, None, needs)
        report = self.runner.run(subscriber, max_seconds=max_seconds, wait_for_lock=5)
        (status,) = self.runner.status([subscriber])
        if report.error or report.busy or status.lag_events:
            return RebuildProgress(
                name, building, report.applied, status.lag_events, False, report.error
            )
        with self.engine.begin() as conn:
            # Deleting a whole retired generation may take longer than a statement of the
            # shop is otherwise allowed to.
            conn.execute(text("SET LOCAL statement_timeout = '10min'"))
            # Locked first, so of two jobs that both found it caught up one switches and
            # the other sees that it did.
            locked = generations.lock(conn, name)
            if locked.building != building:
                return RebuildProgress(name, building, report.applied, 0, switched=True)
            # Fence off every holder of the old generation's partitions: one mid-batch
            # cannot commit after this (its lease confirmation waits for us, then finds
            # the partition gone); one that comes later finds the generation retired.
            old = projection.subscriber(locked.active).name
            conn.execute(
                text(
                    "UPDATE subscription_partitions SET fence = fence + 1, holder = NULL"
                    " WHERE name = :name"
                ),
                {"name": old},
            )
            retired = generations.switch(conn, name, building)
            if retired is not None:
                projection.purge(conn, retired)
        return RebuildProgress(name, building, report.applied, 0, switched=True)


def _reached(checkpoints: list[Checkpoint], wanted: ConsistencyToken) -> bool:
    """Whether the partition of the token's slot (every partition, for a token without
    one) has applied the token's event."""
    if wanted.slot is not None:
        return checkpoints[partition_of(wanted.slot, len(checkpoints))] >= wanted.checkpoint
    return all(checkpoint >= wanted.checkpoint for checkpoint in checkpoints)


_ACTIVE_AND_CHECKPOINTS = text(
    """
    SELECT g.active, p.partition, s.transaction_id, s.position
    FROM unnest(CAST(:partitions AS int[])) AS p(partition)
    LEFT JOIN projection_generations AS g ON g.name = :name
    LEFT JOIN subscriptions AS s ON s.name = :subscription AND s.partition = p.partition
    ORDER BY p.partition
    """
)


def _active_and_checkpoints(
    conn: Connection, name: str, subscriber: PostgresSubscriber, partitions: Sequence[int]
) -> tuple[int, list[Checkpoint]]:
    """The read model's active generation and `subscriber`'s checkpoints in `partitions`,
    in one statement (one snapshot): what `generations.read` and `read_checkpoint` say."""
    params = {"name": name, "subscription": subscriber.name, "partitions": list(partitions)}
    rows = conn.execute(_ACTIVE_AND_CHECKPOINTS, params).all()
    active = 1 if not rows or rows[0][0] is None else int(rows[0][0])
    return active, [START if row[2] is None else Checkpoint(row[2], row[3]) for row in rows]
