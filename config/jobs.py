"""What the RQ workers do.

`Jobs` holds the work, given an application. Below it are the functions RQ runs: RQ
stores a job as the import path of its function plus arguments, so each is a one-line
entry point handing the work to the `Jobs` its process serves. The worker's entry point
(`config.worker`, the settings module of `rq worker -c config.worker`) builds the
application once, when the process starts, and `serve`s it here.

A catch-up job means "drain this subscription from its checkpoint", so a lost or
duplicated job is harmless: RQ only wakes the runners.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from kernel.leases import default_holder
from payments import tracking

if TYPE_CHECKING:
    from config.bootstrap import Application

log = logging.getLogger("config.jobs")

RUN_SECONDS = 5  # one job drains at most this long, then yields the worker to other queues


class Jobs:
    def __init__(self, application: Application) -> None:
        self.application = application

    def catch_up(
        self, name: str, partition: int | None = None, partitions: int | None = None
    ) -> dict[str, int]:
        """Drain one partition of the subscription `name` (every one when `partition` is
        None), in each of its live generations: the active one and a rebuild's, if any;
        for EVERY_SUBSCRIPTION, of every asynchronous read model and the saga, in turn.

        `partition` is of `partitions` as the waker counted them; a subscription recorded
        with another count drains the partitions that cover the same slots. A partition
        another worker holds is left to it (marked wanted, so its holder drains once
        more), with a retry queued for when that holder's lease runs out.
        """
        app = self.application
        if partition is not None:
            app.queues.woken(name, partition)
        applied = {}
        unfinished = False
        deadline = time.monotonic() + RUN_SECONDS
        for subscriber in app.subscribers(name):
            left = max(deadline - time.monotonic(), 0.05)
            report = app.runner.run(
                subscriber, partition=partition, of=partitions, max_seconds=left
            )
            applied[subscriber.name] = report.applied
            unfinished |= not (report.caught_up or report.busy or report.error)
            if report.busy and partition is not None and report.busy_until is not None:
                app.queues.retry_when_free(name, partition, report.busy_until)
        if unfinished:  # the clock stopped it: let the other queues in, then carry on
            app.queues.wake([name], None if partition is None else [partition])
        return applied

    def rebuild(self, name: str) -> str:
        """Continue the rebuild of `name`; requeue itself until the switch is done. A
        rebuild built with a newer version of the read model than this worker's code is
        left to the workers running that code (the sweep queues the job again)."""
        app = self.application
        app.queues.rebuild_started(name)
        progress = app.read_side.continue_rebuild(name, max_seconds=RUN_SECONDS)
        if progress.needs_version is not None:
            return (
                f"generation {progress.generation} is built with version"
                f" {progress.needs_version}: left to workers running it"
            )
        if progress.error:
            return f"stopped: {progress.error}"
        if not progress.switched:
            app.queues.rebuild(name)
            return f"generation {progress.generation}: {progress.lag_events} events to go"
        return f"switched to generation {progress.generation}"

    def payment_deadline(self, order_id: str) -> bool:
        """The payment deadline of one order passed: compensate if it is still unpaid."""
        return self.application.saga.time_out(order_id)

    def settle_payment(self, order_id: str) -> str:
        """Make the provider call the order's payment waits on (charge, refund, or the
        look-up of a pending charge) and record the answer. Raises ProviderUnavailable
        when the outcome is unknown: RQ retries the job (PROVIDER_RETRY), with the same
        idempotency key."""
        return self.application.provider_calls.settle(order_id)

    def reconcile_payments(self) -> int:
        """Queue a provider call for every payment that has waited on the provider for
        longer than PAYMENT_RECONCILE_AFTER (its job lost or given up, its webhook lost);
        returns how many."""
        app = self.application
        with app.engine.begin() as conn:
            overdue = tracking.overdue(conn, app.settings.reconcile_after)
            tracking.checked(conn, [awaiting.order_id for awaiting in overdue])
        for awaiting in overdue:
            app.queues.settle_payment(awaiting.order_id, awaiting.call_key)
        return len(overdue)

    def upgrade_read_models(self) -> dict[str, int]:
        """Start a rebuild of every read model whose active generation was built with an
        older version than this worker's code declares (none if one is under way), and
        keep a job on every rebuild under way, however it was started (a lost job would
        leave it unswitched). Returns the rebuilds this call started (read model ->
        generation); of many workers racing, one starts each."""
        app = self.application
        upgrade = app.read_side.upgrade(requested_by=default_holder())
        for name, generation in upgrade.started.items():
            log.info(
                "rebuilding a read model for its new version",
                extra={"read_model": name, "generation": generation},
            )
        for name in upgrade.rebuilding:
            app.queues.rebuild(name)
        return upgrade.started

    def sweep(self) -> dict[str, int]:
        """Wake every partition of every subscription, start and keep going the rebuilds
        of read models whose version changed, move the synchronous read models'
        checkpoints on, compensate orders whose payment deadline passed, and have the
        payments workers reconcile payments that waited on the provider too long, and
        delete customers' sessions over for a day (`rq cron` runs it every
        SWEEP_INTERVAL). For the asynchronous subscriptions it only
        queues the catch-up jobs (one per partition at most, as commits do) instead of
        draining itself: `rq cron`
        queues the next sweep whether this one finished or not, and sweeps that drained
        piled up behind each other exactly when the workers were behind. Returns the
        rebuilds it started (see upgrade_read_models)."""
        app = self.application
        app.queues.wake([app.saga.name, *app.read_side.projections])
        started = self.upgrade_read_models()
        for name, projection in app.read_side.projections.items():
            if projection.mode == "sync":  # applied at commit: only its checkpoint moves
                self.catch_up(name)
        for order_id in app.saga.overdue():
            app.saga.time_out(order_id)
        app.queues.reconcile_payments()
        app.accounts.forget_ended_sessions()
        return started


# --- the functions RQ runs -----------------------------------------------------------


def catch_up(
    name: str, partition: int | None = None, partitions: int | None = None
) -> dict[str, int]:
    return _this_worker().catch_up(name, partition, partitions)


def rebuild(name: str) -> str:
    return _this_worker().rebuild(name)


def payment_deadline(order_id: str) -> bool:
    return _this_worker().payment_deadline(order_id)


def settle_payment(order_id: str) -> str:
    return _this_worker().settle_payment(order_id)


def reconcile_payments() -> int:
    return _this_worker().reconcile_payments()


def sweep() -> dict[str, int]:
    return _this_worker().sweep()


_served: Jobs | None = None


def serve(jobs: Jobs) -> None:
    """Run this process's jobs with `jobs` (the worker's entry point does, at start)."""
    global _served
    _served = jobs


def _this_worker() -> Jobs:
    if _served is None:
        raise RuntimeError("no application serves jobs here: start `rq worker -c config.worker`")
    return _served
