"""The composition root: builds every long-lived object from settings, once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from redis import Redis
from sqlalchemy import Engine

import inventory.events
import inventory.handlers
import orders.events
import orders.handlers
import payments.events
import payments.handlers
from config.adapters import InventoryCatalog, simulated_gateway
from config.database import make_engine
from config.metrics import Metrics
from config.queues import PROJECTIONS, SAGAS
from config.read_side import build_projections
from config.settings import Settings
from config.waking import DeadlineScheduler, SimulatedProviderCallbacks, Waker
from kernel.auth import Authenticator
from kernel.command_bus import CommandBus
from kernel.event_store import EventStore
from kernel.registry import EventRegistry
from kernel.subscriptions import Subscriber, SubscriptionRunner
from payments.gateway import SimulatedGateway
from projections.read_side import ReadSide
from sagas.order_fulfillment import OrderFulfillmentSaga


@dataclass
class Application:
    settings: Settings
    engine: Engine
    redis: Redis
    registry: EventRegistry
    store: EventStore
    bus: CommandBus
    runner: SubscriptionRunner
    authenticator: Authenticator
    read_side: ReadSide
    saga: OrderFulfillmentSaga
    waker: Waker
    metrics: Metrics

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()
        self.waker.redis.close()


def bootstrap(settings: Settings) -> Application:
    """Wire the system; nothing connects until first used."""
    database_url, redis_url = settings.require()
    if not settings.admin_token or not settings.secret_key:
        raise RuntimeError("ADMIN_TOKEN and SECRET_KEY must be set (or resolved locally)")
    engine = make_engine(database_url)
    redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
    registry = EventRegistry()
    registry.register(*inventory.events.EVENTS, *orders.events.EVENTS, *payments.events.EVENTS)
    store = EventStore(registry)
    metrics = Metrics(settings.prometheus_dir)
    bus = CommandBus(
        engine,
        store,
        snapshot_interval=settings.snapshot_interval,
        max_attempts=settings.command_attempts,
        middleware=[metrics.observe_command],
    )
    inventory.handlers.register(bus)
    orders.handlers.register(bus, catalog=InventoryCatalog())
    payments.handlers.register(bus, gateway=simulated_gateway())
    runner = SubscriptionRunner(engine, store, batch_size=settings.subscription_batch_size)
    authenticator = Authenticator(
        settings.secret_key, settings.admin_token, settings.customer_token_ttl
    )
    read_side = ReadSide(
        engine,
        store,
        runner,
        build_projections(settings, redis),
        wait_timeout=settings.read_wait_timeout,
    )
    bus.before_commit.append(read_side.apply_sync)
    # Waking workers must never hold up a command: fail fast when Redis is away.
    wake_redis = Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.25)
    saga = OrderFulfillmentSaga(
        engine,
        bus,
        timedelta(seconds=settings.payment_timeout),
        schedule_deadline=DeadlineScheduler(wake_redis),
    )
    targets = {saga.name: SAGAS}
    targets |= {p.name: PROJECTIONS for p in read_side.projections.values() if p.mode == "async"}
    waker = Waker(wake_redis, targets)
    bus.after_commit.append(waker)
    bus.after_commit.append(metrics.events_appended)
    bus.after_commit.append(SimulatedProviderCallbacks(wake_redis, SimulatedGateway.ASYNC_PREFIX))
    return Application(
        settings, engine, redis, registry, store, bus, runner, authenticator, read_side, saga,
        waker, metrics,
    )  # fmt: skip


def subscribers(application: Application, name: str) -> list[Subscriber]:
    """The subscribers a catch-up job for `name` drains (KeyError if unknown)."""
    if name == application.saga.name:
        return [application.saga]
    return application.read_side.subscribers(name)
