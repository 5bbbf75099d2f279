"""What `rq cron -c config.worker config.cron` puts on the queues, and how often.

The sweep catches up every subscription and compensates every overdue payment, so no
event waits for a person when a wake-up or a deadline job was lost (Redis down or
flushed). RQ's cron scheduler keeps this schedule in its own process: it enqueues the
next sweep whatever became of the last one.
"""

from __future__ import annotations

from rq import cron

from config import jobs
from config.queues import PROJECTIONS
from config.settings import Settings

SWEEP_INTERVAL = Settings.from_env().sweep_interval

cron.register(
    jobs.sweep, queue_name=PROJECTIONS, interval=SWEEP_INTERVAL, result_ttl=0, failure_ttl=600
)
