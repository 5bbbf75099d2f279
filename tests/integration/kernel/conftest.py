from __future__ import annotations

import pytest

from config.bootstrap import Application
from kernel.command_bus import CommandBus
from kernel.event_store import EventStore
from kernel.subscriptions import SubscriptionRunner
from tests.support.tally import Count, OpenTally, count, open_tally, tally_registry


@pytest.fixture
def store() -> EventStore:
    return EventStore(tally_registry())


@pytest.fixture
def bus(application: Application, store: EventStore) -> CommandBus:
    bus = CommandBus(application.engine, store, snapshot_interval=10)
    bus.register(OpenTally, open_tally)
    bus.register(Count, count)
    return bus


@pytest.fixture
def runner(application: Application, store: EventStore) -> SubscriptionRunner:
    return SubscriptionRunner(application.engine, store, batch_size=100)
