"""The Payment aggregate: one per order, with an explicit state machine.

    new -> requested                      ProcessPayment (a job will call the provider)
    requested -> pending | succeeded | failed     the provider's answer
    pending -> succeeded | failed                 its later answer (webhook, reconciliation)
    failed -> requested                   another attempt, perhaps with another card
    requested -> abandoned -> failed      AbandonPayment: the charge is not to be made; a
                                          call may have reached the provider, so its key
                                          is fenced there (see ProviderCalls) to be sure
    pending -> cancelling -> failed       AbandonPayment: cancelled at the provider
    abandoned | cancelling -> succeeded   the provider charged regardless (then refunded)
    succeeded -> refunding -> refunded | succeeded (the refund was refused)
    succeeded | refunding -> refunded     a refund made at the provider (webhook)

The aggregate never talks to the provider. It says which call is due and with which
idempotency key; whoever made the call hands the answer back here, and an answer that
was recorded already (a webhook after the job's own result, a redelivery) changes nothing.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from kernel.aggregate import Aggregate
from kernel.errors import DomainError, Invalid
from kernel.messages import Event
from kernel.money import Money
from payments.events import (
    PaymentAbandoned,
    PaymentCancellationRequested,
    PaymentFailed,
    PaymentPending,
    PaymentRefunded,
    PaymentRequested,
    PaymentSucceeded,
    RefundFailed,
    RefundRequested,
)

Status = Literal[
    "new", "requested", "pending", "succeeded", "failed", "refunding", "refunded",
    "abandoned", "cancelling",
]  # fmt: skip
CHARGE_OUTCOMES = ("succeeded", "failed", "pending")
REFUND_OUTCOMES = ("succeeded", "failed")
AWAITING_PROVIDER: frozenset[Status] = frozenset(
    {"requested", "pending", "refunding", "abandoned", "cancelling"}
)
ANSWERABLE: frozenset[Status] = frozenset({"requested", "pending", "abandoned", "cancelling"})
"""Statuses in which the provider's answer about the current charge is still news."""
UNSPECIFIED = "unspecified"
REFUNDED_AT_PROVIDER = "refunded at the payment provider"


def charge_key(order_id: str, attempt: int) -> str:
    """The idempotency key of an order's `attempt`-th charge: the same for every call
    about it, and the id of the job that makes them."""
    return f"payment-{order_id}-charge-{attempt}"


def refund_key(order_id: str, attempt: int) -> str:
    return f"payment-{order_id}-refund-{attempt}"


def cancel_key(order_id: str, attempt: int) -> str:
    return f"payment-{order_id}-cancel-{attempt}"


class Payment(Aggregate):
    stream_type = "payment"
    snapshot_version = 2

    def __init__(self, order_id: str) -> None:
        super().__init__(order_id)
        self.status: Status = "new"
        self.amount = Money.zero("XXX")  # ISO 4217 "no currency" until a charge is asked
        self.payment_method = ""
        self.customer_id = ""
        self.attempt = 0
        self.charge_reference = ""
        self.captured = self.amount
        self.refunds = 0
        self.refund_reason = ""
        self.provider_events: set[str] = set()

    # --- charging --------------------------------------------------------------------

    def request(self, amount: Money, payment_method: str, customer_id: str = "") -> None:
        """Ask for a charge of `amount`. An order is charged successfully at most once:
        while a charge is asked, pending, succeeded or refunded, asking again changes
        nothing. After a failure it asks again (a new attempt, a new idempotency key)."""
        if amount.amount <= 0:
            raise DomainError("a payment amount must be positive", code="invalid_amount")
        if self.status in ("new", "failed"):
            self.record(
                PaymentRequested(self.id, amount, payment_method, self.attempt + 1, customer_id)
            )
        elif amount != self.amount:
            raise DomainError(
                f"order {self.id} is already being paid with {self.amount}, not {amount}",
                code="payment_amount_mismatch",
            )

    @property
    def charge_due(self) -> bool:
        """Whether the provider must be asked to charge (nothing has answered yet)."""
        return self.status == "requested"

    @property
    def charge_key(self) -> str:
        return charge_key(self.id, self.attempt)

    def abandon(self, reason: str) -> None:
        """Nobody may pay any more (the order's payment deadline passed, or the order was
        cancelled): a charge not yet made is not made, and one waiting on the customer is
        to be cancelled at the provider. A call already made may have charged all the
        same (its answer was lost): the abandoned payment still waits on the provider
        until it is known that the call never took effect, or what it did, and a charge
        made regardless is recorded, so it is refunded. A settled payment is left alone."""
        if self.status == "requested":
            self.record(PaymentAbandoned(self.id, self.amount, reason, self.attempt))
        elif self.status == "pending":
            self.record(
                PaymentCancellationRequested(
                    self.id, self.amount, reason, self.charge_reference, self.attempt
                )
            )

    @property
    def cancel_due(self) -> bool:
        return self.status == "cancelling"

    @property
    def fence_due(self) -> bool:
        """Whether the abandoned charge's key must still be made unusable at the provider
        (see ProviderCalls), finding out meanwhile whether a call already charged."""
        return self.status == "abandoned"

    def record_charge(
        self,
        attempt: int,
        outcome: str,
        reference: str | None,
        reason: str | None,
        captured: int | None = None,
        provider_event_id: str | None = None,
    ) -> None:
        """Record the provider's answer about charge `attempt`; an answer known already
        (the same outcome, or one the payment has moved past) changes nothing."""
        if provider_event_id is not None and provider_event_id in self.provider_events:
            return
        if outcome not in CHARGE_OUTCOMES:
            raise Invalid(f"outcome must be one of {', '.join(CHARGE_OUTCOMES)}, not {outcome!r}")
        if self.status == "new":
            raise DomainError(f"no payment was asked for order {self.id}", code="payment_unknown")
        if attempt != self.attempt:
            raise DomainError(
                f"attempt {attempt} of order {self.id}'s payment is over (now {self.attempt})",
                code="payment_attempt_over",
            )
        if self.status not in ANSWERABLE:
            if _agrees(self.status, outcome):
                return
            raise DomainError(
                f"the payment for order {self.id} is {self.status} already",
                code="payment_settled",
            )
        if outcome == "pending":
            if self.status == "requested":
                self.record(PaymentPending(self.id, self.amount, _required(reference)))
            elif self.status == "abandoned":  # a call under way left a charge waiting
                self.record(
                    PaymentCancellationRequested(
                        self.id, self.amount, "payment abandoned", _required(reference), attempt
                    )
                )
        elif outcome == "succeeded":
            taken = None if captured is None else Money(captured, self.amount.currency)
            self.record(
                PaymentSucceeded(
                    self.id, self.amount, _required(reference), provider_event_id, taken
                )
            )
        else:
            self.record(
                PaymentFailed(self.id, self.amount, reason or UNSPECIFIED, provider_event_id)
            )

    # --- refunding -------------------------------------------------------------------

    def request_refund(self, reason: str) -> None:
        """Ask for the money actually captured to go back; asking again changes nothing."""
        if self.status in ("refunding", "refunded"):
            return
        if self.status != "succeeded":
            raise DomainError(
                f"the payment for order {self.id} is {self.status}; only a succeeded"
                " payment can be refunded",
                code="payment_not_refundable",
            )
        self.record(RefundRequested(self.id, self.captured, reason, self.refunds + 1))

    @property
    def call_key(self) -> str | None:
        """The idempotency key of the provider call the payment waits on, if it waits."""
        if self.status in ("requested", "pending", "abandoned"):
            return self.charge_key
        if self.status == "cancelling":
            return cancel_key(self.id, self.attempt)
        return self.refund_key if self.status == "refunding" else None

    @property
    def refund_due(self) -> bool:
        return self.status == "refunding"

    @property
    def refund_key(self) -> str:
        return refund_key(self.id, self.refunds)

    def record_refund(
        self,
        outcome: str,
        reference: str | None,
        reason: str | None,
        provider_event_id: str | None = None,
    ) -> None:
        """Record the provider's answer about a refund: of the one asked for, or of one
        made at the provider directly (a succeeded payment then counts as refunded)."""
        if provider_event_id is not None and provider_event_id in self.provider_events:
            return
        if outcome not in REFUND_OUTCOMES:
            raise Invalid(f"outcome must be one of {', '.join(REFUND_OUTCOMES)}, not {outcome!r}")
        if self.status == "refunded":
            return
        if outcome == "failed":
            if self.status == "refunding":
                self.record(RefundFailed(self.id, self.captured, reason or UNSPECIFIED))
            return
        if self.status not in ("succeeded", "refunding"):
            raise DomainError(
                f"the payment for order {self.id} is {self.status}; nothing to refund",
                code="payment_not_refundable",
            )
        why = self.refund_reason if self.status == "refunding" else REFUNDED_AT_PROVIDER
        self.record(PaymentRefunded(self.id, self.captured, why, _required(reference)))

    # --- state -----------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        match event:
            case PaymentRequested(amount=amount, payment_method=method, attempt=attempt):
                self.status, self.amount = "requested", amount
                self.payment_method, self.attempt = method, attempt
                self.customer_id = event.customer_id
                self.charge_reference = ""
            case PaymentPending(provider_reference=reference):
                self.status, self.charge_reference = "pending", reference
            case PaymentSucceeded(amount=amount, provider_reference=reference):
                self.status, self.amount, self.charge_reference = "succeeded", amount, reference
                self.captured = event.amount_captured or amount
                self._seen(event.provider_event_id)
            case PaymentFailed(amount=amount):
                self.status, self.amount = "failed", amount
                self._seen(event.provider_event_id)
            case PaymentAbandoned():
                self.status = "abandoned"
            case PaymentCancellationRequested(provider_reference=reference):
                self.status, self.charge_reference = "cancelling", reference
            case RefundRequested(reason=reason, attempt=attempt):
                self.status, self.refund_reason, self.refunds = "refunding", reason, attempt
            case RefundFailed():
                self.status = "succeeded"
            case PaymentRefunded():
                self.status = "refunded"
            case _:
                super().apply(event)

    def snapshot_state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "amount": _money(self.amount),
            "payment_method": self.payment_method,
            "customer_id": self.customer_id,
            "attempt": self.attempt,
            "charge_reference": self.charge_reference,
            "captured": _money(self.captured),
            "refunds": self.refunds,
            "refund_reason": self.refund_reason,
            "provider_events": sorted(self.provider_events),
        }

    @classmethod
    def from_snapshot(cls, aggregate_id: str, version: int, state: dict[str, Any]) -> Self:
        payment = cls(aggregate_id)
        payment.version = version
        payment.status = state["status"]
        payment.amount = Money(**state["amount"])
        payment.payment_method = state["payment_method"]
        payment.customer_id = state.get("customer_id", "")
        payment.attempt = state["attempt"]
        payment.charge_reference = state["charge_reference"]
        payment.captured = Money(**state["captured"])
        payment.refunds = state["refunds"]
        payment.refund_reason = state["refund_reason"]
        payment.provider_events = set(state["provider_events"])
        return payment

    def _seen(self, provider_event_id: str | None) -> None:
        if provider_event_id is not None:
            self.provider_events.add(provider_event_id)


def _agrees(status: Status, outcome: str) -> bool:
    """Whether a settled payment's status already says what `outcome` says."""
    if outcome == "failed":
        return status == "failed"
    return status in ("succeeded", "refunding", "refunded")  # "pending" is past, too


def _required(reference: str | None) -> str:
    if not reference:
        raise Invalid("the provider's reference is required for this outcome")
    return reference


def _money(money: Money) -> dict[str, Any]:
    return {"amount": money.amount, "currency": money.currency}
