"""Commands of the payments context."""

from __future__ import annotations

from dataclasses import dataclass

from kernel.messages import Command
from kernel.money import Money


@dataclass(frozen=True, slots=True)
class ProcessPayment(Command):
    order_id: str
    amount: Money
    payment_token: str


@dataclass(frozen=True, slots=True)
class RefundPayment(Command):
    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class CompletePayment(Command):
    """The provider's late answer to a pending charge; `outcome` is "succeeded" or "failed"."""

    order_id: str
    provider_event_id: str
    outcome: str
    reason: str | None = None
