"""Subscribers whose state lives in Redis beside their checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError
from sqlalchemy import Connection

from kernel.driver import autocommit
from kernel.errors import CheckpointMoved
from kernel.event_store import START, Checkpoint, RecordedEvent
from kernel.leases import Lease


class RedisSubscriber:
    """Base for subscribers that keep their read model in Redis.

    Each partition has its own checkpoint key. A batch and its partition's checkpoint
    are written in one MULTI/EXEC, guarded by WATCH on that key: if anything else
    moved the checkpoint meanwhile, nothing is written; the lease is renewed (and its
    fence checked) in PostgreSQL just before, so a holder that lost it stops, and one
    that loses it after can only find the checkpoint moved. Events at or before the
    stored checkpoint are skipped, so a replayed batch changes nothing. A missing
    checkpoint (Redis flushed) means "start from the beginning".

    Subclasses set `name` and `event_types` and implement `load(redis, events)`
    (reads needed before writing, done while watching) and `write(pipe, events,
    loaded)` (queued writes).
    """

    name: str
    event_types: frozenset[str] | None
    appends_to_its_log = False  # a read model: see SubscriptionRunner._drain

    def __init__(self, redis: Redis, checkpoint_key: str) -> None:
        self.redis = redis
        self.checkpoint_key = checkpoint_key

    def checkpoint_key_of(self, partition: int) -> str:
        return f"{self.checkpoint_key}:{partition}"

    def checkpoint(self, conn: Connection | None = None, partition: int = 0) -> Checkpoint:
        return _parse(self.redis.get(self.checkpoint_key_of(partition)))

    def checkpoints(self, partitions: Sequence[int]) -> list[Checkpoint]:
        """The checkpoints of `partitions`, in one round trip."""
        keys = [self.checkpoint_key_of(p) for p in partitions]
        return [_parse(raw) for raw in self.redis.mget(keys)]

    def apply(
        self,
        conn: Connection,
        events: Sequence[RecordedEvent],
        lease: Lease,
        after: Checkpoint | None = None,
    ) -> None:
        key = self.checkpoint_key_of(lease.partition)
        with autocommit(conn):
            lease.confirm(conn)
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                current = _parse(pipe.get(key))
                if after is not None and current != after:
                    # E.g. Redis lost its data mid-drain: start over from what is stored.
                    raise CheckpointMoved(f"{self.name} is at {current.token()}")
                fresh = [event for event in events if event.checkpoint > current]
                if not fresh:
                    return
                loaded = self.load(pipe, fresh)
                pipe.multi()
                self.write(pipe, fresh, loaded)
                pipe.set(key, fresh[-1].checkpoint.token())
                pipe.execute()
            except WatchError:
                raise CheckpointMoved(f"{self.name}: checkpoint moved while applying") from None

    def apply_parked(
        self,
        conn: Connection,
        events: Sequence[RecordedEvent],
        lease: Lease,
        settle: Callable[[Connection], object],
    ) -> None:
        """Write parked events (the checkpoint stays), then settle in PostgreSQL: if that
        is lost, a retry writes them again, which changes nothing."""
        with autocommit(conn):
            lease.confirm(conn)
        with self.redis.pipeline() as pipe:
            pipe.watch(self.checkpoint_key_of(lease.partition))  # type: ignore[no-untyped-call]
            loaded = self.load(pipe, events)
            pipe.multi()
            self.write(pipe, events, loaded)
            pipe.execute()
        with conn.begin():
            lease.confirm(conn)
            settle(conn)

    def load(self, redis: Pipeline, events: Sequence[RecordedEvent]) -> Any:
        return None

    def write(self, pipe: Pipeline, events: Sequence[RecordedEvent], loaded: Any) -> None:
        raise NotImplementedError


def _parse(raw: Any) -> Checkpoint:
    if not raw:
        return START
    return Checkpoint.parse(raw.decode() if isinstance(raw, bytes) else str(raw))
