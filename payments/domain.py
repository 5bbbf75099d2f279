"""The Payment aggregate: one per order, with an explicit state machine.

new -> pending | succeeded | failed;  pending -> succeeded | failed;
failed -> pending | succeeded | failed (a new attempt);  succeeded -> refunded.

The aggregate never talks to the provider: the handler asks whether a charge or
refund is due, calls the gateway, and hands the provider's answer back here.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from kernel.aggregate import Aggregate
from kernel.errors import DomainError, Invalid
from kernel.messages import Event
from kernel.money import Money
from payments.events import PaymentFailed, PaymentPending, PaymentRefunded, PaymentSucceeded
from payments.gateway import ChargeResult, RefundResult

Status = Literal["new", "pending", "succeeded", "failed", "refunded"]
OUTCOMES = ("succeeded", "failed")
UNSPECIFIED = "unspecified"


class Payment(Aggregate):
    stream_type = "payment"

    def __init__(self, order_id: str) -> None:
        super().__init__(order_id)
        self.status: Status = "new"
        self.amount = Money.zero("XXX")  # ISO 4217 "no currency" until a charge is attempted
        self.charge_reference = ""
        self.provider_events: set[str] = set()

    def charge_due(self, amount: Money) -> bool:
        """Whether the provider must be charged for `amount`.

        An order is charged successfully at most once: while a charge is pending,
        succeeded or refunded, processing again changes nothing. After a failure a
        new attempt charges again, since the customer may retry with another card.
        """
        if amount.amount <= 0:
            raise DomainError("a payment amount must be positive", code="invalid_amount")
        if self.status in ("new", "failed"):
            return True
        if amount != self.amount:
            raise DomainError(
                f"order {self.id} is already being paid with {self.amount}, not {amount}",
                code="payment_amount_mismatch",
            )
        return False

    def process(self, amount: Money, result: ChargeResult) -> None:
        if not self.charge_due(amount):
            return
        match result:
            case ChargeResult(status="succeeded", reference=str(reference)):
                self.record(PaymentSucceeded(self.id, amount, reference))
            case ChargeResult(status="pending", reference=str(reference)):
                self.record(PaymentPending(self.id, amount, reference))
            case ChargeResult(status="failed", reason=reason):
                self.record(PaymentFailed(self.id, amount, reason or UNSPECIFIED))
            case _:
                raise ValueError(f"the gateway answered a malformed {result!r}")

    def refund_due(self) -> bool:
        """Whether the provider must refund; refunding a refunded payment changes nothing."""
        if self.status == "refunded":
            return False
        if self.status != "succeeded":
            raise DomainError(
                f"the payment for order {self.id} is {self.status}; only a succeeded"
                " payment can be refunded",
                code="payment_not_refundable",
            )
        return True

    def refund(self, reason: str, result: RefundResult) -> None:
        if not self.refund_due():
            return
        match result:
            case RefundResult(status="succeeded", reference=str(reference)):
                self.record(PaymentRefunded(self.id, self.amount, reason, reference))
            case _:
                raise DomainError(
                    f"the provider refused the refund: {result.reason or UNSPECIFIED}",
                    code="refund_failed",
                )

    def complete(self, provider_event_id: str, outcome: str, reason: str | None) -> None:
        """Record the provider's late answer to a pending charge; a repeated event is a no-op."""
        if provider_event_id in self.provider_events:
            return
        if outcome not in OUTCOMES:
            raise Invalid(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        if self.status != "pending":
            raise DomainError(
                f"the payment for order {self.id} is {self.status}, not pending",
                code="payment_not_pending",
            )
        if outcome == "succeeded":
            self.record(
                PaymentSucceeded(self.id, self.amount, self.charge_reference, provider_event_id)
            )
        else:
            self.record(
                PaymentFailed(self.id, self.amount, reason or UNSPECIFIED, provider_event_id)
            )

    def apply(self, event: Event) -> None:
        match event:
            case PaymentPending(amount=amount, provider_reference=reference):
                self.status, self.amount, self.charge_reference = "pending", amount, reference
            case PaymentSucceeded(amount=amount, provider_reference=reference):
                self.status, self.amount, self.charge_reference = "succeeded", amount, reference
                self._seen(event.provider_event_id)
            case PaymentFailed(amount=amount):
                self.status, self.amount = "failed", amount
                self._seen(event.provider_event_id)
            case PaymentRefunded():
                self.status = "refunded"
            case _:
                super().apply(event)

    def snapshot_state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "amount": {"amount": self.amount.amount, "currency": self.amount.currency},
            "charge_reference": self.charge_reference,
            "provider_events": sorted(self.provider_events),
        }

    @classmethod
    def from_snapshot(cls, aggregate_id: str, version: int, state: dict[str, Any]) -> Self:
        payment = cls(aggregate_id)
        payment.version = version
        payment.status = state["status"]
        payment.amount = Money(state["amount"]["amount"], state["amount"]["currency"])
        payment.charge_reference = state["charge_reference"]
        payment.provider_events = set(state["provider_events"])
        return payment

    def _seen(self, provider_event_id: str | None) -> None:
        if provider_event_id is not None:
            self.provider_events.add(provider_event_id)
