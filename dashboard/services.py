"""What the dashboard needs from the rest of the system; `config` builds it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from redis import Redis
from sqlalchemy import Engine

from kernel.admins import AdminAccounts
from kernel.auth import Authenticator
from kernel.command_bus import CommandBus
from kernel.subscriptions import Subscriber
from projections.read_side import ReadSide
from sagas.order_fulfillment import OrderFulfillmentSaga


@dataclass(frozen=True, slots=True)
class Services:
    """The read side and the command bus, plus the few other things pages show.

    `saga` is the fulfillment saga (its lag, and an operator's retry or cancel),
    `engine` the shop's database (where the sagas' state lives), `authenticator` whose
    token signs in (`admins` the named ones, `admin_token` the bootstrap one),
    `schedule_rebuild(name)` queues a rebuild job, `rq_redis_url` the Redis that RQ uses
    (the RQ dashboard is mounted only when it is given), `subscriber(name)` a
    subscription's subscriber (KeyError if none; for parked keys), `saga_step_bounds`
    when a saga is stuck.
    """

    read_side: ReadSide
    bus: CommandBus
    redis: Redis
    saga: OrderFulfillmentSaga
    engine: Engine
    authenticator: Authenticator
    admins: AdminAccounts
    admin_token: str
    schedule_rebuild: Callable[[str], None]
    subscriber: Callable[[str], Subscriber]
    saga_step_bounds: Mapping[str, float]
    rq_redis_url: str | None = None
