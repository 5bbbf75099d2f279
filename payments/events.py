"""Events of the payments context."""

from __future__ import annotations

from dataclasses import dataclass

from kernel.messages import Event
from kernel.money import Money


@dataclass(frozen=True, slots=True)
class PaymentPending(Event):
    """The provider took the charge but answers later (or never): a deadline applies."""

    order_id: str
    amount: Money
    provider_reference: str


@dataclass(frozen=True, slots=True)
class PaymentSucceeded(Event):
    order_id: str
    amount: Money
    provider_reference: str
    provider_event_id: str | None = None  # set when a pending payment completed


@dataclass(frozen=True, slots=True)
class PaymentFailed(Event):
    order_id: str
    amount: Money
    reason: str
    provider_event_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentRefunded(Event):
    order_id: str
    amount: Money
    reason: str
    provider_reference: str  # the refund's reference at the provider


EVENTS: tuple[type[Event], ...] = (
    PaymentPending,
    PaymentSucceeded,
    PaymentFailed,
    PaymentRefunded,
)
