from __future__ import annotations

import pytest

from config.bootstrap import Container
from kernel.command_bus import CommandBus
from kernel.event_store import EventStore
from kernel.subscriptions import SubscriptionRunner
from tests.support.tally import Count, OpenTally, count, open_tally, tally_registry


@pytest.fixture
def store() -> EventStore:
    return EventStore(tally_registry())


@pytest.fixture
def bus(container: Container, store: EventStore) -> CommandBus:
    bus = CommandBus(container.engine, store, snapshot_interval=10)
    bus.register(OpenTally, open_tally)
    bus.register(Count, count)
    return bus


@pytest.fixture
def runner(container: Container, store: EventStore) -> SubscriptionRunner:
    return SubscriptionRunner(container.engine, store, batch_size=100)
