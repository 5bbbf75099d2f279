"""RQ jobs. Each means "drain this subscription from its checkpoint", so a lost
or duplicated job is harmless: RQ only wakes the runners.

The worker process builds the application once, on its first job, and keeps it
(with its connection pool) for the jobs after.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from rq import Queue
from rq.exceptions import DuplicateJobError

from config.bootstrap import Application, bootstrap, subscribers
from config.local import prepare_local
from config.queues import PROJECTIONS
from config.settings import Settings
from config.waking import flag
from kernel.logging import configure_logging
from payments.simulator import post_notification

log = logging.getLogger("config.jobs")
_application: Application | None = None

RUN_SECONDS = 5  # one job drains at most this long, then yields the worker to other queues
LAST_SWEEP = "shop:last-sweep"


def application() -> Application:
    global _application
    if _application is None:
        settings = prepare_local(Settings.from_env())
        configure_logging(settings.log_level)
        _application = bootstrap(settings)
    return _application


def catch_up(name: str) -> dict[str, int]:
    """Drain the subscription `name` (and a read model's rebuild, if one is under way)."""
    c = application()
    c.redis.delete(flag(name))
    applied = {}
    unfinished = False
    for subscriber in subscribers(c, name):
        report = c.runner.run(subscriber, max_seconds=RUN_SECONDS, wait_for_lock=5)
        applied[subscriber.name] = report.applied
        unfinished |= not (report.caught_up or report.busy or report.error)
    if unfinished:  # the clock stopped it: let the other queues in, then carry on
        c.waker.wake([name])
    return applied


def rebuild(name: str) -> str:
    """Continue the rebuild of `name`; requeue itself until the switch is done."""
    c = application()
    progress = c.read_side.continue_rebuild(name, max_seconds=RUN_SECONDS)
    if progress.error:
        return f"stopped: {progress.error}"
    if not progress.switched:
        Queue(PROJECTIONS, connection=c.redis).enqueue(rebuild, name, result_ttl=0)
        return f"generation {progress.generation}: {progress.lag_events} events to go"
    return f"switched to generation {progress.generation}"


def payment_deadline(order_id: str) -> bool:
    """The payment deadline of one order passed: compensate if it is still unpaid."""
    return application().saga.time_out(order_id)


def deliver_simulated_payment(order_id: str) -> int:
    """The simulated provider calls back: a signed "payment succeeded" webhook to the API."""
    settings = application().settings
    status = post_notification(settings.api_url, settings.payment_webhook_secret, order_id)
    if status >= 500:
        raise RuntimeError(f"the payment webhook answered {status}; RQ will retry")
    return status


def sweep() -> None:
    """Catch up every subscription and every overdue deadline; runs periodically."""
    c = application()
    c.redis.set(LAST_SWEEP, _now_seconds(c))
    catch_up(c.saga.name)
    for name in c.read_side.projections:
        catch_up(name)
    for order_id in c.saga.overdue():
        c.saga.time_out(order_id)
    schedule_sweep(c)


def keep_sweeping(c: Application) -> None:
    """Schedule the next sweep; run one here and now if none ran for three intervals
    (RQ's scheduler may be down, or held by a worker that crashed)."""
    last = c.redis.get(LAST_SWEEP)
    if last is None or _now_seconds(c) - float(last) > 3 * c.settings.sweep_interval:
        sweep()
    else:
        schedule_sweep(c)


def schedule_sweep(c: Application) -> None:
    """Make sure the next sweep is scheduled (one per interval, whoever asks)."""
    interval = c.settings.sweep_interval
    queue = Queue(PROJECTIONS, connection=c.redis)
    slot = int(_now_seconds(c) // interval) + 1
    with contextlib.suppress(DuplicateJobError):  # another worker scheduled this slot
        queue.enqueue_in(
            timedelta(seconds=interval),
            sweep,
            job_id=f"shop-sweep-{slot}",
            unique=True,
            result_ttl=0,
            failure_ttl=600,
        )


def _now_seconds(c: Application) -> float:
    seconds, micros = c.redis.time()
    return seconds + micros / 1_000_000
