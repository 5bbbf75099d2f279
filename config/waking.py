"""Everything that puts work on the RQ queues: catch-up, rebuild and deadline jobs."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry

from config.queues import PROJECTIONS, SAGAS
from kernel.event_store import RecordedEvent

log = logging.getLogger("config.waking")


class Waker:
    """After a commit, enqueue one catch-up job per subscription that is not already queued.

    A Redis flag per subscription deduplicates: it is set when a job is queued and
    cleared when the job starts, so events committed while a job runs still get
    a job of their own. When Redis is unreachable the commit stands, wake-ups are
    skipped for a few seconds, and the workers' periodic sweep catches up.
    """

    def __init__(self, redis: Redis, queues_by_subscription: Mapping[str, str]) -> None:
        self.redis = redis
        self.queues = {
            name: Queue(queue, connection=redis) for name, queue in queues_by_subscription.items()
        }
        self._quiet_until = 0.0

    def __call__(self, recorded: Sequence[RecordedEvent]) -> None:
        self.wake(self.queues)

    def wake(self, names: Iterable[str]) -> None:
        """Queue a catch-up job for each named subscription that has none queued."""
        if time.monotonic() < self._quiet_until:
            return
        try:
            wanted = [name for name in names if name in self.queues]
            with self.redis.pipeline(transaction=False) as pipe:
                for name in wanted:
                    pipe.set(flag(name), 1, nx=True, ex=60)
                raised = pipe.execute()  # one round trip for every flag
            for name, newly in zip(wanted, raised, strict=True):
                if newly:
                    self.queues[name].enqueue(
                        "config.jobs.catch_up", name, result_ttl=0, failure_ttl=3600
                    )
        except RedisError as error:
            self._quiet_until = time.monotonic() + 5
            log.warning("could not wake the workers", extra={"error": str(error)})


def flag(name: str) -> str:
    return f"shop:wake:{name}"


def schedule_rebuild(redis: Redis, name: str) -> None:
    Queue(PROJECTIONS, connection=redis).enqueue("config.jobs.rebuild", name, result_ttl=0)


class DeadlineScheduler:
    """Puts a saga's payment deadline on RQ's scheduler; the sweep covers a lost one."""

    def __init__(self, redis: Redis) -> None:
        self.queue = Queue(SAGAS, connection=redis)

    def __call__(self, order_id: str, at: datetime) -> None:
        # RQ keeps whole seconds: round up, or the job runs early and finds nothing due.
        at = at.replace(microsecond=0) + timedelta(seconds=1)
        try:
            self.queue.enqueue_at(
                at,
                "config.jobs.payment_deadline",
                order_id,
                job_id=f"payment-deadline-{order_id}",
                result_ttl=0,
                failure_ttl=3600,
            )
        except RedisError as error:
            log.warning(
                "could not schedule a deadline", extra={"order_id": order_id, "error": str(error)}
            )


class SimulatedProviderCallbacks:
    """Plays the payment provider's side for `tok_async` charges: once a pending
    charge has committed, a job posts the signed success webhook to the API."""

    def __init__(self, redis: Redis, prefix: str, delay: timedelta = timedelta(seconds=1)) -> None:
        self.queue = Queue(SAGAS, connection=redis)
        self.prefix = prefix
        self.delay = delay

    def __call__(self, recorded: Sequence[RecordedEvent]) -> None:
        for event in recorded:
            reference = event.data.get("provider_reference", "")
            if event.type == "PaymentPending" and reference.startswith(self.prefix):
                try:
                    self.queue.enqueue_in(
                        self.delay,
                        "config.jobs.deliver_simulated_payment",
                        event.data["order_id"],
                        retry=Retry(max=5, interval=[1, 2, 5, 10, 30]),
                        result_ttl=0,
                        failure_ttl=3600,
                    )
                except RedisError as error:
                    log.warning(
                        "could not schedule the simulated webhook", extra={"error": str(error)}
                    )
