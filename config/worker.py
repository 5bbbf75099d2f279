"""The entry point of the shop's RQ processes: the settings module of

    rq worker -c config.worker -w rq.SimpleWorker --connection-class config.worker.PatientRedis \
        --with-scheduler --maintenance-interval 10 --dequeue-strategy round_robin
    rq worker ...the same options... shop-payments      (a payments worker)
    rq cron -c config.worker --connection-class config.worker.PatientRedis config.cron

Importing it reads the settings (exiting at once, naming what is missing, unless
SHOP_ENV=development), builds the process's application and serves it to the jobs RQ
runs (config.jobs). RQ reads REDIS_URL and QUEUES from here; a payments worker names its
queue on the command line instead, so it serves nothing but the provider calls.

Why these options, all RQ's own: `rq.SimpleWorker` runs jobs in the worker process
instead of forking a child per job (~7 ms instead of ~27 ms per job here, and the
process keeps its database pool); our jobs are short "drain from checkpoint" loops
bounded in time, so a fork buys no isolation worth that. `PatientRedis` makes RQ's own
Redis calls wait out an outage instead of ending the worker. `--maintenance-interval`
lets a worker take over RQ's scheduler within seconds when the one running it died,
rather than RQ's default ten minutes. The periodic sweep comes from `rq cron`, whose
schedule lives in its process, so Redis losing every queued job does not lose it.

At start, a process also starts the rebuild of each read model whose stored generation
was built with an older version than its code declares (the sweep does too; see
Jobs.upgrade_read_models), so a deploy's new workers need not wait for a sweep to land
on one of them rather than on a worker of the previous release.
"""

from __future__ import annotations

import logging
from typing import Any

from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from sqlalchemy.exc import SQLAlchemyError

from config import jobs as job_functions
from config.bootstrap import bootstrap
from config.environment import MissingSettings, settings_for
from config.jobs import Jobs
from config.queues import QUEUES as _QUEUES

try:
    settings = settings_for("rq worker / rq cron (config.worker)")
except MissingSettings as missing:
    raise SystemExit(str(missing)) from None

REDIS_URL = settings.redis_url
QUEUES = list(_QUEUES)

application = bootstrap(settings)
_jobs = Jobs(application)
job_functions.serve(_jobs)
try:
    _jobs.upgrade_read_models()
except (SQLAlchemyError, RedisError) as error:  # the sweep tries again
    logging.getLogger("config.worker").warning(
        "could not check the read models' versions", extra={"error": str(error)}
    )
finally:
    # RQ forks its scheduler from this process: leave it no database connection to share.
    application.engine.dispose()


class PatientRedis(Redis):
    """A Redis client that retries a command on a connection error until Redis answers
    again (backing off up to 2 s between tries), for RQ's own bookkeeping: RQ ends a
    worker on an error it does not expect, and a worker must outlive a Redis restart."""

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Any:
        retry = Retry(
            ExponentialBackoff(cap=2, base=0.1),
            retries=-1,
            supported_errors=(RedisConnectionError, RedisTimeoutError),
        )
        kwargs.setdefault("retry", retry)
        return super().from_url(url, **kwargs)
