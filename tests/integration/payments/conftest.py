from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from config.bootstrap import Application
from kernel.command_bus import CommandBus
from kernel.messages import Event
from kernel.money import Money
from payments import handlers
from payments.gateway import ChargeResult, RefundResult, SimulatedGateway


@dataclass
class RecordingGateway:
    """The simulated provider, remembering every call it gets."""

    charges: list[tuple[str, Money, str, str]] = field(default_factory=list)
    refunds: list[tuple[str, Money, str]] = field(default_factory=list)
    provider: SimulatedGateway = field(default_factory=SimulatedGateway)

    def charge(
        self, order_id: str, amount: Money, token: str, idempotency_key: str
    ) -> ChargeResult:
        self.charges.append((order_id, amount, token, idempotency_key))
        return self.provider.charge(order_id, amount, token, idempotency_key)

    def refund(self, provider_reference: str, amount: Money, idempotency_key: str) -> RefundResult:
        self.refunds.append((provider_reference, amount, idempotency_key))
        return self.provider.refund(provider_reference, amount, idempotency_key)


@pytest.fixture
def gateway() -> RecordingGateway:
    return RecordingGateway()


@pytest.fixture
def recorded_bus(application: Application, gateway: RecordingGateway) -> CommandBus:
    """A bus wired like the real one, but with a gateway that counts charges and refunds."""
    bus = CommandBus(application.engine, application.store)
    handlers.register(bus, gateway)
    return bus


def payment_events(application: Application, order_id: str) -> list[Event]:
    with application.engine.connect() as conn:
        return [r.event for r in application.store.read_stream(conn, f"payment-{order_id}")]
