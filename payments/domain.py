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
    succeeded -> refunding -> refunded | succeeded (the refund was refused, or it gave
                                          back part of the money: more may follow)
    succeeded | refunding -> refunded     a refund made at the provider (webhook)

Refunds may be partial (a returned line), each named by a refund id, and together never
beyond what was captured. One refund at a time is with the provider: one asked for
meanwhile is queued (RefundQueued) and asked for once the one in flight is settled, so
the provider is never asked for two refunds whose sum it would refuse, and each refund
keeps its own idempotency key (its attempt number).

The aggregate never talks to the provider. It says which call is due and with which
idempotency key; whoever made the call hands the answer back here, and an answer that
was recorded already (a webhook after the job's own result, a redelivery) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    RefundQueued,
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


def refund_attempt(key: str) -> int | None:
    """The attempt a refund's idempotency key names (the provider hands it back in the
    refund's metadata), or None when `key` is no refund key."""
    _, sep, attempt = key.rpartition("-refund-")
    return int(attempt) if sep and attempt.isdigit() else None


def cancel_key(order_id: str, attempt: int) -> str:
    return f"payment-{order_id}-cancel-{attempt}"


@dataclass(frozen=True, slots=True)
class RefundAsk:
    """A refund asked for and not settled yet: `amount` None is "whatever is left" (a
    queued full refund), decided when it is sent to the provider."""

    refund_id: str
    amount: Money | None
    reason: str
    attempt: int = 0  # set once it is with the provider


class Payment(Aggregate):
    stream_type = "payment"
    snapshot_version = 3

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
        self.refunded_total = self.amount
        self.refund_in_flight: RefundAsk | None = None
        self.refund_queue: tuple[RefundAsk, ...] = ()
        self.refund_ids: set[str] = set()  # asked for, and not refused
        self.refund_references: set[str] = set()  # the provider's, of refunds recorded

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

    def request_refund(self, reason: str, amount: Money | None = None, refund_id: str = "") -> None:
        """Ask for `amount` to go back (None: all captured that is not refunded or asked
        for already). A refund id asked for before (unless refused), or a full refund
        when nothing is left, changes nothing; more than is left is refused. While a
        refund is with the provider, this one is queued behind it."""
        if refund_id and refund_id in self.refund_ids:
            return
        if self.status == "refunded" and amount is None:
            return
        if self.status not in ("succeeded", "refunding", "refunded"):
            raise DomainError(
                f"the payment for order {self.id} is {self.status}; only a succeeded"
                " payment can be refunded",
                code="payment_not_refundable",
            )
        left = self.refundable
        if amount is None:
            if left.amount <= 0:
                return  # everything is refunded, or asked for
        else:
            _check_refund(amount, left, self.id)
        if self.refund_in_flight is not None:
            self.record(RefundQueued(self.id, refund_id, amount, reason))
        else:
            asked = left if amount is None else amount
            self.record(RefundRequested(self.id, asked, reason, self.refunds + 1, refund_id))

    @property
    def refundable(self) -> Money:
        """What may still be asked back: captured, less what is refunded, with the
        provider or queued (a queued full refund claims all that is left)."""
        if any(ask.amount is None for ask in self.refund_queue):
            return Money.zero(self.captured.currency)
        claimed = self.refunded_total.amount + sum(
            ask.amount.amount
            for ask in (self.refund_in_flight, *self.refund_queue)
            if ask is not None and ask.amount is not None
        )
        return Money(max(self.captured.amount - claimed, 0), self.captured.currency)

    @property
    def fully_refunding(self) -> bool:
        """Whether the refunds made, in flight and queued give back all that was
        captured: the order's money is (being) returned in full."""
        if self.status == "refunded":
            return True
        asked = self.refund_in_flight is not None or bool(self.refund_queue)
        return asked and self.refundable.amount <= 0

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

    @property
    def refund_amount(self) -> Money:
        """The amount of the refund with the provider (everything captured for refunds
        asked before partial refunds existed)."""
        in_flight = self.refund_in_flight
        if in_flight is None or in_flight.amount is None:
            return self.captured
        return in_flight.amount

    def record_refund(
        self,
        outcome: str,
        reference: str | None,
        reason: str | None,
        provider_event_id: str | None = None,
        attempt: int | None = None,
        whole_charge: bool = False,
    ) -> None:
        """Record the provider's answer about a refund: of the one with the provider
        (`attempt` None or its attempt), or of one made at the provider directly, which
        counts only when the provider holds the whole charge refunded (`whole_charge`,
        or no refund of ours in flight). An answer about a refund recorded already, or
        about another attempt, changes nothing. Once one is settled, the next queued
        refund is asked for."""
        if provider_event_id is not None and provider_event_id in self.provider_events:
            return
        if outcome not in REFUND_OUTCOMES:
            raise Invalid(f"outcome must be one of {', '.join(REFUND_OUTCOMES)}, not {outcome!r}")
        if self.status == "refunded" or (reference and reference in self.refund_references):
            return
        in_flight = self.refund_in_flight
        ours = in_flight is not None and attempt in (None, self.refunds)
        if outcome == "failed":
            if ours and in_flight is not None:
                self.record(
                    RefundFailed(
                        self.id,
                        self.refund_amount,
                        reason or UNSPECIFIED,
                        in_flight.refund_id,
                        self.refunded_total if self.refunded_total.amount else None,
                    )
                )
                self._ask_next_refund()
            return
        if self.status not in ("succeeded", "refunding"):
            raise DomainError(
                f"the payment for order {self.id} is {self.status}; nothing to refund",
                code="payment_not_refundable",
            )
        if whole_charge or in_flight is None:
            if attempt is not None and not ours:
                return  # an answer about a refund settled earlier
            why = in_flight.reason if ours and in_flight else REFUNDED_AT_PROVIDER
            named = in_flight.refund_id if ours and in_flight else ""
            rest = self.captured.amount - self.refunded_total.amount
            self._refunded(Money(rest, self.captured.currency), why, reference, named)
        elif ours and in_flight is not None:
            self._refunded(self.refund_amount, in_flight.reason, reference, in_flight.refund_id)
            self._ask_next_refund()

    def _refunded(self, amount: Money, reason: str, reference: str | None, refund_id: str) -> None:
        total = Money(self.refunded_total.amount + amount.amount, self.captured.currency)
        fully = total.amount >= self.captured.amount
        self.record(
            PaymentRefunded(self.id, amount, reason, _required(reference), refund_id, fully, total)
        )

    def _ask_next_refund(self) -> None:
        """The refund first in the queue goes to the provider (a full refund takes what
        is left now)."""
        if self.status == "refunded" or not self.refund_queue:
            return
        ask = self.refund_queue[0]
        left = self.captured.amount - self.refunded_total.amount
        amount = Money(left, self.captured.currency) if ask.amount is None else ask.amount
        self.record(RefundRequested(self.id, amount, ask.reason, self.refunds + 1, ask.refund_id))

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
            case RefundQueued(refund_id=refund_id, amount=amount, reason=reason):
                self.refund_queue += (RefundAsk(refund_id, amount, reason),)
                self._named(refund_id)
            case RefundRequested(reason=reason, attempt=attempt, refund_id=refund_id):
                self.status, self.refund_reason, self.refunds = "refunding", reason, attempt
                if self.refund_queue and self.refund_queue[0].refund_id == refund_id:
                    self.refund_queue = self.refund_queue[1:]  # its turn came
                self.refund_in_flight = RefundAsk(refund_id, event.amount, reason, attempt)
                self._named(refund_id)
            case RefundFailed(refund_id=refund_id):
                self.status, self.refund_in_flight = "succeeded", None
                self.refund_ids.discard(refund_id)  # refused: it may be asked again
            case PaymentRefunded(amount=amount, provider_reference=reference):
                total = event.refunded_total  # None: stored before partial refunds
                self.refunded_total = amount if total is None else total
                self.refund_in_flight = None
                self.refund_references.add(reference)
                self._named(event.refund_id)
                if event.fully_refunded:
                    self.status, self.refund_queue = "refunded", ()
                else:
                    self.status = "succeeded"
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
            "refunded_total": _money(self.refunded_total),
            "refund_in_flight": _ask(self.refund_in_flight),
            "refund_queue": [_ask(ask) for ask in self.refund_queue],
            "refund_ids": sorted(self.refund_ids),
            "refund_references": sorted(self.refund_references),
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
        payment.refunded_total = Money(**state["refunded_total"])
        payment.refund_in_flight = _ask_of(state["refund_in_flight"])
        payment.refund_queue = tuple(
            ask for ask in map(_ask_of, state["refund_queue"]) if ask is not None
        )
        payment.refund_ids = set(state["refund_ids"])
        payment.refund_references = set(state["refund_references"])
        return payment

    def _named(self, refund_id: str) -> None:
        if refund_id:
            self.refund_ids.add(refund_id)

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


def _check_refund(amount: Money, left: Money, order_id: str) -> None:
    if amount.amount <= 0:
        raise DomainError("a refund amount must be positive", code="invalid_amount")
    if amount.currency != left.currency:
        raise DomainError(
            f"order {order_id} was paid in {left.currency}, not {amount.currency}",
            code="currency_mismatch",
        )
    if amount.amount > left.amount:
        raise DomainError(
            f"order {order_id} has {left} left to refund, not {amount}",
            code="refund_exceeds_payment",
        )


def _money(money: Money) -> dict[str, Any]:
    return {"amount": money.amount, "currency": money.currency}


def _ask(ask: RefundAsk | None) -> dict[str, Any] | None:
    if ask is None:
        return None
    amount = None if ask.amount is None else _money(ask.amount)
    return {"refund_id": ask.refund_id, "amount": amount, "reason": ask.reason,
            "attempt": ask.attempt}  # fmt: skip


def _ask_of(state: dict[str, Any] | None) -> RefundAsk | None:
    if state is None:
        return None
    amount = None if state["amount"] is None else Money(**state["amount"])
    return RefundAsk(state["refund_id"], amount, state["reason"], state["attempt"])
