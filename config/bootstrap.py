"""The composition root: builds every long-lived object from settings, once."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis import Redis
from sqlalchemy import Engine

from config.database import make_engine
from config.settings import Settings
from kernel.command_bus import CommandBus
from kernel.event_store import EventStore
from kernel.registry import EventRegistry
from kernel.subscriptions import Subscriber, SubscriptionRunner


@dataclass
class Container:
    settings: Settings
    engine: Engine
    redis: Redis
    registry: EventRegistry
    store: EventStore
    bus: CommandBus
    runner: SubscriptionRunner
    subscribers: dict[str, Subscriber] = field(default_factory=dict)

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()


def bootstrap(settings: Settings) -> Container:
    """Wire the system; nothing connects until first used."""
    database_url, redis_url = settings.require()
    engine = make_engine(database_url)
    redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
    registry = EventRegistry()
    store = EventStore(registry)
    bus = CommandBus(
        engine,
        store,
        snapshot_interval=settings.snapshot_interval,
        max_attempts=settings.command_attempts,
    )
    runner = SubscriptionRunner(engine, store, batch_size=settings.subscription_batch_size)
    return Container(settings, engine, redis, registry, store, bus, runner)
