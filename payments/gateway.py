"""The payment gateway port: what the payments context asks of a payment provider.

It is called by jobs on their own queue, never inside a database transaction: the
outcome is recorded afterwards with a command (see payments.provider_calls).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from kernel.money import Money


class ProviderUnavailable(Exception):
    """The provider could not be asked, or did not answer in time, or answered that it
    could not decide now (a network error, a timeout, a 5xx, a rate limit). Whether the
    call had an effect is unknown: ask again later with the same idempotency key."""


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    order_id: str
    attempt: int
    amount: Money
    payment_method: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """What the provider said about a charge: `reference` unless it failed before the
    provider made one, `reason` if it failed, `captured` (minor units) if it succeeded."""

    status: Literal["succeeded", "failed", "pending"]
    reference: str | None = None
    reason: str | None = None
    captured: int | None = None

    @classmethod
    def succeeded(cls, reference: str, captured: int | None = None) -> ChargeResult:
        return cls("succeeded", reference=reference, captured=captured)

    @classmethod
    def failed(cls, reason: str, reference: str | None = None) -> ChargeResult:
        return cls("failed", reference=reference, reason=reason)

    @classmethod
    def pending(cls, reference: str) -> ChargeResult:
        return cls("pending", reference=reference)


@dataclass(frozen=True, slots=True)
class RefundResult:
    """What the provider said about a refund; `whole_charge` when it answered with a
    refund made earlier because the whole charge is refunded already."""

    status: Literal["succeeded", "failed"]
    reference: str | None = None
    reason: str | None = None
    whole_charge: bool = False

    @classmethod
    def succeeded(cls, reference: str, whole_charge: bool = False) -> RefundResult:
        return cls("succeeded", reference=reference, whole_charge=whole_charge)

    @classmethod
    def failed(cls, reason: str) -> RefundResult:
        return cls("failed", reason=reason)


@dataclass(frozen=True, slots=True)
class CustomerAction:
    """Where a pending charge stands at the provider, and what the customer must do to
    complete it: `next_action` (Stripe: "use_stripe_sdk", "redirect_to_url") with the
    `client_secret` the customer's browser completes it with (Stripe.js:
    handleNextAction). Meant for the paying customer only, and never stored."""

    reference: str
    status: str
    next_action: str | None
    client_secret: str | None


class PaymentGateway(Protocol):
    """Charges and refunds money at a payment provider.

    Contract:
    - Idempotent per idempotency key: a call repeated with the same key moves money at
      most once and answers about the same charge or refund.
    - A business outcome is an answer, never an exception: a declined card is
      `ChargeResult.failed(reason)`, a charge waiting on the customer (3-D Secure) is
      `ChargeResult.pending(reference)`, a refused refund `RefundResult.failed(reason)`.
    - Anything that leaves the outcome unknown raises ProviderUnavailable, after at most
      the implementation's connect and read timeouts.
    """

    def charge(self, request: ChargeRequest) -> ChargeResult: ...

    def charge_status(self, reference: str) -> ChargeResult:
        """Where the charge `reference` stands now (to reconcile one whose outcome never
        arrived)."""
        ...

    def customer_action(self, reference: str) -> CustomerAction:
        """What the customer must do about the pending charge `reference`."""
        ...

    def fence(self, request: ChargeRequest) -> ChargeResult:
        """Make sure the charge `request` describes is never made from now on, and say
        whether an earlier call with its idempotency key made it: failed("abandoned")
        if none did, else that call's outcome (succeeded: it must be refunded)."""
        ...

    def cancel(self, reference: str, idempotency_key: str) -> ChargeResult:
        """Cancel the charge `reference`, which waits on the customer; where it stands
        afterwards: failed ("canceled"), or succeeded if the customer was quicker."""
        ...

    def refund(
        self, order_id: str, charge_reference: str, amount: Money, idempotency_key: str
    ) -> RefundResult:
        """Refund exactly `amount` of the charge; the provider keeps `idempotency_key`
        with the refund (Stripe: in its metadata), so its webhook names the refund."""
        ...
