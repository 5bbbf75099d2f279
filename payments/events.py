"""Events of the payments context.

A charge goes: PaymentRequested (the saga asked; nothing has reached the provider yet)
-> PaymentPending (the provider waits on the customer, e.g. 3-D Secure) -> PaymentSucceeded
or PaymentFailed; when the order is given up first, PaymentAbandoned (nothing was
charged) or PaymentCancellationRequested (the pending charge is cancelled at the
provider, then PaymentFailed). A refund goes: RefundRequested -> PaymentRefunded or
RefundFailed; one asked while another is with the provider is RefundQueued first. A
payment may be refunded in parts (returned lines), never beyond what was captured.
Only the provider's references (PaymentIntent, refund and payment method ids) are kept,
never card data.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernel.messages import Event
from kernel.money import Money


@dataclass(frozen=True, slots=True)
class PaymentRequested(Event):
    """A charge is due: a job will ask the provider, outside any transaction. `attempt`
    counts the charges asked for this order (a failed one may be followed by another)."""

    order_id: str
    amount: Money
    payment_method: str
    attempt: int
    customer_id: str = ""  # who pays ("": not known when it was asked)


@dataclass(frozen=True, slots=True)
class PaymentPending(Event):
    """The provider took the charge but answers later (the customer must authenticate,
    or the payment is processing): a webhook, or reconciliation, brings the outcome."""

    order_id: str
    amount: Money
    provider_reference: str


@dataclass(frozen=True, slots=True)
class PaymentSucceeded(Event):
    order_id: str
    amount: Money
    provider_reference: str
    provider_event_id: str | None = None  # set when a webhook brought the outcome
    amount_captured: Money | None = None  # what the provider took; None: the whole amount


@dataclass(frozen=True, slots=True)
class PaymentFailed(Event):
    order_id: str
    amount: Money
    reason: str
    provider_event_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentAbandoned(Event):
    """Nobody may pay any more (the order is cancelled): the charge asked for is not to be
    made. A call already under way may still charge; that charge is then recorded, and
    refunded."""

    order_id: str
    amount: Money
    reason: str
    attempt: int  # of the charge abandoned


@dataclass(frozen=True, slots=True)
class PaymentCancellationRequested(Event):
    """Nobody may pay any more, and a charge waits on the customer at the provider: a
    job will cancel it there (or find that it succeeded meanwhile)."""

    order_id: str
    amount: Money
    reason: str
    provider_reference: str
    attempt: int  # of the charge cancelled


@dataclass(frozen=True, slots=True)
class RefundRequested(Event):
    """The money goes back: a job will ask the provider for a refund of `amount`.
    `attempt` counts the refunds asked (one may be refused, and asked for again)."""

    order_id: str
    amount: Money
    reason: str
    attempt: int
    refund_id: str = ""  # the refund asked for ("": one named by nobody)


@dataclass(frozen=True, slots=True)
class RefundQueued(Event):
    """A refund was asked while another is with the provider: it waits its turn, and is
    asked for (RefundRequested) once that one is settled. `amount` None: whatever is
    left to refund by then."""

    order_id: str
    refund_id: str
    amount: Money | None
    reason: str


@dataclass(frozen=True, slots=True)
class PaymentRefunded(Event):
    """A refund went through. `amount` is this refund's; `refunded_total` all refunded so
    far, this one included (None on events from before partial refunds: `amount`);
    `fully_refunded` whether nothing captured is left."""

    order_id: str
    amount: Money
    reason: str
    provider_reference: str  # the refund's reference at the provider
    refund_id: str = ""
    fully_refunded: bool = True
    refunded_total: Money | None = None


@dataclass(frozen=True, slots=True)
class RefundFailed(Event):
    """The provider refused the refund; the payment stands as succeeded (with whatever
    earlier refunds gave back: `refunded_total`, None on events of before partial
    refunds, when nothing had been)."""

    order_id: str
    amount: Money
    reason: str
    refund_id: str = ""
    refunded_total: Money | None = None


EVENTS: tuple[type[Event], ...] = (
    PaymentRequested,
    PaymentPending,
    PaymentSucceeded,
    PaymentFailed,
    PaymentAbandoned,
    PaymentCancellationRequested,
    RefundRequested,
    RefundQueued,
    PaymentRefunded,
    RefundFailed,
)
