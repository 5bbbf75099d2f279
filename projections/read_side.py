"""The read side as queries and operators see it: freshness, status and rebuilds."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

from kernel.event_store import Checkpoint, EventStore, RecordedEvent
from kernel.subscriptions import (
    SUBSCRIPTION_LOCKS,
    Subscriber,
    SubscriptionRunner,
    SubscriptionStatus,
)
from projections import generations
from projections.generations import Generations
from projections.projection import PostgresProjection, Projection


@dataclass(frozen=True, slots=True)
class Freshness:
    """How far a read model is behind the log when a query reads it."""

    generation: int  # the generation the query should read
    lag_events: int
    lag_seconds: float
    stale: bool  # a consistency token was given and the wait for it ran out


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    name: str
    store: str
    mode: str
    generation: int
    subscription: SubscriptionStatus
    rebuild: SubscriptionStatus | None  # the generation being rebuilt, if any


@dataclass(frozen=True, slots=True)
class RebuildProgress:
    name: str
    generation: int
    applied: int
    lag_events: int
    switched: bool
    error: str | None = None


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
        self.poll_interval = poll_interval

    def projection(self, name: str) -> Projection:
        """Raises KeyError for an unknown read model."""
        return self.projections[name]

    def generations(self, name: str) -> Generations:
        with self.engine.connect() as conn:
            return generations.read(conn, name)

    def subscribers(self, name: str) -> list[Subscriber]:
        """The active generation's subscriber, then the one being rebuilt, if any."""
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
            if projection.mode == "sync" and isinstance(projection, PostgresProjection):
                active = generations.read(conn, projection.name).active
                projection.apply_in_transaction(conn, active, events)

    def freshness(self, name: str, token: str | None = None) -> Freshness:
        """Wait (bounded) until the read model has applied `token`, then measure its lag.

        A malformed token raises ValueError. Sync read models are fresh at commit.
        """
        wanted = Checkpoint.parse(token) if token else None
        projection = self.projection(name)
        with self.engine.connect() as conn:
            with conn.begin():
                generation = generations.read(conn, name).active
            if projection.mode == "sync":
                return Freshness(generation, 0, 0.0, False)
            subscriber = projection.subscriber(generation)
            checkpoint = subscriber.checkpoint(conn)
            stale = False
            if wanted is not None:
                deadline = time.monotonic() + self.wait_timeout
                while checkpoint < wanted:
                    if time.monotonic() >= deadline:
                        stale = True
                        break
                    time.sleep(self.poll_interval)
                    checkpoint = subscriber.checkpoint(conn)
            with conn.begin():
                lag, oldest = self.store.backlog(conn, checkpoint)
        seconds = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        return Freshness(generation, lag, max(seconds, 0.0), stale)

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
                )
            )
        return statuses

    def start_rebuild(self, name: str) -> int:
        self.projection(name)
        with self.engine.begin() as conn:
            return generations.start_rebuild(conn, name)

    def continue_rebuild(self, name: str, max_seconds: float = 30) -> RebuildProgress:
        """Replay into the generation being built; switch to it once it has caught up."""
        projection = self.projection(name)
        building = self.generations(name).building
        if building is None:
            return RebuildProgress(name, self.generations(name).active, 0, 0, switched=True)
        subscriber = projection.subscriber(building)
        report = self.runner.run(subscriber, max_seconds=max_seconds, wait_for_lock=5)
        (status,) = self.runner.status([subscriber])
        if report.error or report.busy or status.lag_events:
            return RebuildProgress(
                name, building, report.applied, status.lag_events, False, report.error
            )
        with self.engine.begin() as conn:
            # Wait out any runner still draining the old generation; once switched, a runner
            # that comes later finds it retired and leaves it alone.
            old = projection.subscriber(generations.read(conn, name).active).name
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:ns, hashtext(:name))"),
                {"ns": SUBSCRIPTION_LOCKS, "name": old},
            )
            retired = generations.switch(conn, name, building)
            if retired is not None:
                projection.purge(conn, retired)
        return RebuildProgress(name, building, report.applied, 0, switched=True)
