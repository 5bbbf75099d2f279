"""Commands of the payments context.

ProcessPayment and RefundPayment only record that money is to move; the provider is
called afterwards by a job, outside any transaction, and its answer comes back as
RecordChargeOutcome or RecordRefundOutcome (from that job, from a webhook, or from
reconciliation: each may repeat an answer already recorded, which changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from kernel.messages import Command
from kernel.money import Money


@dataclass(frozen=True, slots=True)
class ProcessPayment(Command):
    order_id: str
    amount: Money
    payment_token: str  # the provider's payment method id (Stripe: pm_...)
    customer_id: str = ""  # who pays: who may see what the provider asks of them


@dataclass(frozen=True, slots=True)
class RefundPayment(Command):
    """Give money back: `amount` of it, or (None) everything captured not yet refunded.
    `refund_id` names one refund (a return's id): asking for it again changes nothing;
    "" names none (a full refund asked twice still changes nothing: nothing is left)."""

    order_id: str
    reason: str
    amount: Money | None = None
    refund_id: str = ""


@dataclass(frozen=True, slots=True)
class AbandonPayment(Command):
    """Nobody may pay for the order any more: stop a charge that has not happened."""

    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RecordChargeOutcome(Command):
    """What the provider said of charge `attempt`: "succeeded", "failed" (with `reason`)
    or "pending" (it waits on the customer)."""

    order_id: str
    attempt: int
    outcome: str
    provider_reference: str | None = None
    reason: str | None = None
    amount_captured: int | None = None  # minor units, in the payment's currency
    provider_event_id: str | None = None  # the webhook event that said so, if one did


@dataclass(frozen=True, slots=True)
class RecordRefundOutcome(Command):
    """What the provider said of a refund: "succeeded" (with its reference) or "failed".

    `attempt` names the refund asked (RefundRequested.attempt) the answer is about; None
    means the one in flight, or, when none is, a refund made at the provider directly.
    `whole_charge` says the provider holds the whole charge refunded now."""

    order_id: str
    outcome: str
    provider_reference: str | None = None
    reason: str | None = None
    provider_event_id: str | None = None
    attempt: int | None = None
    whole_charge: bool = False
