"""Builds the read models and wakes their workers after each commit."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from config.queues import PROJECTIONS
from config.settings import Settings
from kernel.event_store import RecordedEvent
from projections import catalog, order_detail, order_list, sales_analytics
from projections.projection import Mode, Projection

log = logging.getLogger("config.read_side")


def build_projections(settings: Settings, redis: Redis) -> list[Projection]:
    def mode(name: str) -> Mode:
        return "sync" if name in settings.sync_projections else "async"

    return [
        catalog.projection(mode("catalog")),
        order_detail.projection(mode("order_detail")),
        sales_analytics.projection(mode("sales_analytics")),
        order_list.OrderList(redis, mode("order_list")),
    ]


class Waker:
    """After a commit, enqueue one catch-up job per subscription that is not already queued.

    A Redis flag per subscription deduplicates: it is set when a job is queued and
    cleared when the job starts, so events committed while a job runs still get
    a job of their own. When Redis is unreachable the commit stands, the wake-up
    is skipped for a few seconds, and the workers' periodic sweep catches up.
    """

    def __init__(self, redis: Redis, names: Sequence[str], job: str = "config.jobs.catch_up"):
        self.redis = redis
        self.names = list(names)
        self.job = job
        self.queue = Queue(PROJECTIONS, connection=redis)
        self._quiet_until = 0.0

    def __call__(self, recorded: Sequence[RecordedEvent]) -> None:
        if time.monotonic() < self._quiet_until:
            return
        try:
            for name in self.names:
                if self.redis.set(flag(name), 1, nx=True, ex=60):
                    self.queue.enqueue(self.job, name, result_ttl=0, failure_ttl=3600)
        except RedisError as error:
            self._quiet_until = time.monotonic() + 5
            log.warning("could not wake the workers", extra={"error": str(error)})


def flag(name: str) -> str:
    return f"shop:wake:{name}"


def schedule_rebuild(redis: Redis, name: str) -> None:
    Queue(PROJECTIONS, connection=redis).enqueue("config.jobs.rebuild", name, result_ttl=0)
