"""What the dashboard needs from the rest of the system; `config` builds it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis
from sqlalchemy import Engine

from kernel.command_bus import CommandBus
from kernel.subscriptions import Subscriber
from projections.read_side import ReadSide


@dataclass(frozen=True, slots=True)
class Services:
    """The read side and the command bus, plus the few other things pages show.

    `saga` is the fulfillment saga's subscription (for its lag), `engine` the
    shop's database (where the sagas' state lives), `schedule_rebuild(name)` queues
    a rebuild job, `rq_redis_url` the Redis that RQ uses (the RQ dashboard is
    mounted only when it is given).
    """

    read_side: ReadSide
    bus: CommandBus
    redis: Redis
    saga: Subscriber
    engine: Engine
    admin_token: str
    schedule_rebuild: Callable[[str], None]
    rq_redis_url: str | None = None
