"""The shop's RQ queues and every job it puts on them, enqueued by function reference."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from config import jobs
from kernel.event_store import RecordedEvent
from kernel.partitions import partition_of

log = logging.getLogger("config.queues")

SAGAS = "shop-sagas"
PROJECTIONS = "shop-projections"
QUEUES = (SAGAS, PROJECTIONS)
"""In the order a worker serves them."""
PAYMENTS = "shop-payments"
"""Calls to the payment provider, served by workers of their own: a slow provider holds
up those workers only, never the saga or the read models."""
PROVIDER_RETRY = Retry(max=8, interval=[1, 2, 4, 8, 15, 30, 60, 120])
"""A provider call whose outcome is unknown is made again (same idempotency key) after
these pauses; past them, reconciliation asks again."""
_WAITING = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED})

EVERY_SUBSCRIPTION = "every_subscription"
"""The catch-up job that drains a partition of every asynchronous read model, then of the
saga, in turn: one job per partition a commit touches."""


class JobQueues:
    """Puts jobs on the queues; `wake` (an after-commit listener) queues catch-up jobs,
    one per subscription partition the committed events fall in.

    A Redis flag per partition deduplicates catch-up jobs: it is set when a job is
    queued and cleared when the job starts (`woken`), so events committed while a job
    runs still get a job of their own. When Redis is unreachable a commit stands:
    wake-ups are skipped for a few seconds and the periodic sweep catches up; a
    deadline or callback that cannot be scheduled is logged and left to the sweep.
    The client should fail fast (short timeouts): it is used right after commits.
    """

    def __init__(
        self,
        redis: Redis,
        queue_of_job: Mapping[str, str],
        job_of_subscription: Mapping[str, str],
        partitions: int = 1,
    ) -> None:
        """`queue_of_job`: the catch-up jobs (what `Jobs.catch_up` is given) and their
        queues; `job_of_subscription`: which job drains each subscription."""
        self.redis = redis
        self.names = (*QUEUES, PAYMENTS)
        self.partitions = partitions
        self._queues = {name: Queue(name, connection=redis) for name in (*QUEUES, PAYMENTS)}
        self._subscriptions = dict(queue_of_job)
        self._job_of = dict(job_of_subscription) | {job: job for job in queue_of_job}
        self._quiet_until = 0.0

    def __call__(self, recorded: Sequence[RecordedEvent]) -> None:
        touched = sorted({partition_of(event.slot, self.partitions) for event in recorded})
        self.wake(self._subscriptions, touched)

    def wake(self, names: Iterable[str], partitions: Iterable[int] | None = None) -> None:
        """Queue the catch-up job of each partition (all, by default) of each named
        subscription (or job) that has none queued."""
        if time.monotonic() < self._quiet_until:
            return
        parts = list(range(self.partitions) if partitions is None else partitions)
        jobs_named = sorted({self._job_of[n] for n in names if n in self._job_of})
        try:
            wanted = [(n, p) for n in jobs_named for p in parts]
            with self.redis.pipeline(transaction=False) as pipe:
                for name, partition in wanted:
                    pipe.set(_flag(name, partition), 1, nx=True, ex=60)
                raised = pipe.execute()  # one round trip for every flag
                for (name, partition), newly in zip(wanted, raised, strict=True):
                    if newly:
                        self._queues[self._subscriptions[name]].enqueue(
                            jobs.catch_up,
                            name,
                            partition,
                            self.partitions,
                            result_ttl=0,
                            failure_ttl=3600,
                            pipeline=pipe,
                        )
                pipe.execute()  # and one for every job
        except RedisError as error:
            self._quiet_until = time.monotonic() + 5
            log.warning("could not wake the workers", extra={"error": str(error)})

    def woken(self, name: str, partition: int) -> None:
        """A catch-up job of a partition has started: events committed from now on need
        another."""
        self.redis.delete(_flag(name, partition))

    def retry_when_free(self, name: str, partition: int, at: datetime) -> None:
        """Catch the partition up at `at`, when its holder's lease runs out (the holder
        may be frozen; if it is not, it will have drained what was wanted)."""
        at = at.replace(microsecond=0) + timedelta(seconds=1)
        try:
            self._queues[
                self._subscriptions.get(self._job_of.get(name, name), PROJECTIONS)
            ].enqueue_at(
                at,
                jobs.catch_up,
                name,
                partition,
                self.partitions,
                job_id=f"catch-up-retry-{name}-{partition}",
                result_ttl=0,
                failure_ttl=3600,
            )
        except RedisError as error:
            log.warning("could not schedule a retry", extra={"error": str(error)})

    def rebuild(self, name: str) -> None:
        """Continue the rebuild of the read model `name` (see Jobs.rebuild), unless a job
        for it is queued already: a flag, set here and cleared when the job starts
        (`rebuild_started`), as for catch-up jobs, so the sweep's calls and a job's own
        requeue make one chain. When Redis is unreachable the sweep queues it later."""
        try:
            if self.redis.set(_rebuild_flag(name), 1, nx=True, ex=60):
                self._queues[PROJECTIONS].enqueue(
                    jobs.rebuild, name, result_ttl=0, failure_ttl=3600
                )
        except RedisError as error:
            log.warning(
                "could not queue a rebuild", extra={"read_model": name, "error": str(error)}
            )

    def rebuild_started(self, name: str) -> None:
        """A rebuild job of `name` has started: a later call needs another."""
        self.redis.delete(_rebuild_flag(name))

    def payment_deadline(self, order_id: str, at: datetime) -> None:
        """Compensate the order at `at` if it is still unpaid; the sweep covers a lost job."""
        # RQ keeps whole seconds: round up, or the job runs early and finds nothing due.
        at = at.replace(microsecond=0) + timedelta(seconds=1)
        try:
            self._queues[SAGAS].enqueue_at(
                at,
                jobs.payment_deadline,
                order_id,
                job_id=f"payment-deadline-{order_id}",
                result_ttl=0,
                failure_ttl=3600,
            )
        except RedisError as error:
            log.warning(
                "could not schedule a deadline", extra={"order_id": order_id, "error": str(error)}
            )

    def settle_payment(self, order_id: str, call_key: str) -> None:
        """Make the provider call the order's payment waits on (see Jobs.settle_payment);
        the job's id is the call's idempotency key, so a call queued, scheduled for a
        retry or running is not queued twice. Reconciliation covers a lost one."""
        try:
            if self._waiting(call_key):
                return
            self._queues[PAYMENTS].enqueue(
                jobs.settle_payment,
                order_id,
                job_id=call_key,
                retry=PROVIDER_RETRY,
                job_timeout=60,
                result_ttl=600,
                failure_ttl=24 * 3600,
            )
        except RedisError as error:
            log.warning(
                "could not queue a payment provider call",
                extra={"order_id": order_id, "error": str(error)},
            )

    def reconcile_payments(self) -> None:
        """Have a payments worker settle the payments that waited on the provider too long."""
        job_id = "reconcile-payments"
        try:
            if self._waiting(job_id):
                return
            self._queues[PAYMENTS].enqueue(
                jobs.reconcile_payments, job_id=job_id, result_ttl=0, failure_ttl=600
            )
        except RedisError as error:
            log.warning("could not queue reconciliation", extra={"error": str(error)})

    def _waiting(self, job_id: str) -> bool:
        """Whether the job `job_id` is queued, scheduled, running or deferred."""
        try:
            job = Job.fetch(job_id, connection=self.redis)
        except NoSuchJobError:
            return False
        return job.get_status(refresh=False) in _WAITING


def _flag(name: str, partition: int) -> str:
    return f"shop:wake:{name}:{partition}"


def _rebuild_flag(name: str) -> str:
    return f"shop:rebuild:{name}"
