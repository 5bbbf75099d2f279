"""For the snapshot tests: a bus that snapshots even short streams, and an aggregate
loaded the way commands load it next to one replayed from its stream."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import text

import inventory.handlers
import orders.handlers
import payments.handlers
import pricing.handlers
from config.adapters import InventoryCatalog, PaymentsLedger, PricingContext
from config.bootstrap import Application
from kernel.aggregate import Aggregate
from kernel.command_bus import CommandBus
from kernel.messages import Metadata
from kernel.unit_of_work import UnitOfWork
from orders.domain import HoldLimits
from pricing.checkout import Checkout

A = TypeVar("A", bound=Aggregate)


def snapshotting_bus(application: Application, interval: int) -> CommandBus:
    """The application's handlers and sync read models on a bus that snapshots every
    `interval` events (the payments handlers record what the provider is asked and
    answers; none calls it)."""
    bus = CommandBus(application.engine, application.store, snapshot_interval=interval)
    inventory.handlers.register(bus)
    orders.handlers.register(
        bus,
        catalog=InventoryCatalog(),
        payments=PaymentsLedger(),
        limits=HoldLimits(
            application.settings.max_pending_orders, application.settings.max_reserved_units
        ),
        pricing=PricingContext(Checkout()),
    )
    payments.handlers.register(bus)
    pricing.handlers.register(bus)
    bus.before_commit.append(application.read_side.apply_sync)
    return bus


def snapshot_of(application: Application, stream_id: str) -> tuple[int, dict[str, Any]]:
    """The version and state of the stream's snapshot (fails if it has none)."""
    with application.engine.connect() as conn:
        version, state = conn.execute(
            text("SELECT version, state FROM snapshots WHERE stream_id = :stream_id"),
            {"stream_id": stream_id},
        ).one()
    return version, state


def uow_load(application: Application, cls: type[A], aggregate_id: str) -> A:
    """The aggregate as commands load it: its snapshot, then the events after it."""
    with application.engine.begin() as conn:
        return UnitOfWork(conn, application.store, Metadata()).get(cls, aggregate_id)


def replay_stream(
    application: Application, cls: type[A], aggregate_id: str, up_to: int | None = None
) -> A:
    """The aggregate rebuilt from its stream's events, all of them or up to version `up_to`."""
    with application.engine.connect() as conn:
        history = application.store.read_stream(conn, cls.stream_for(aggregate_id))
    aggregate = cls(aggregate_id)
    aggregate.replay(recorded.event for recorded in history[:up_to])
    return aggregate
