"""The payment gateway port and a simulated provider driven by test tokens."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Protocol

from kernel.money import Money


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """What the provider said about a charge: `reference` unless it failed, `reason` if it did."""

    status: Literal["succeeded", "failed", "pending"]
    reference: str | None = None
    reason: str | None = None

    @classmethod
    def succeeded(cls, reference: str) -> ChargeResult:
        return cls("succeeded", reference=reference)

    @classmethod
    def failed(cls, reason: str) -> ChargeResult:
        return cls("failed", reason=reason)

    @classmethod
    def pending(cls, reference: str) -> ChargeResult:
        return cls("pending", reference=reference)


@dataclass(frozen=True, slots=True)
class RefundResult:
    status: Literal["succeeded", "failed"]
    reference: str | None = None
    reason: str | None = None

    @classmethod
    def succeeded(cls, reference: str) -> RefundResult:
        return cls("succeeded", reference=reference)

    @classmethod
    def failed(cls, reason: str) -> RefundResult:
        return cls("failed", reason=reason)


class PaymentGateway(Protocol):
    """Charges and refunds money at a payment provider.

    Contract:
    - Idempotent per `idempotency_key`: a call repeated with the same key (a retried
      command) moves money at most once and answers with the same reference.
    - `charge` never raises for a business outcome: a declined card is
      `ChargeResult.failed(reason)`. A provider that will answer later, or did not
      answer in time, gives `ChargeResult.pending(reference)`; the outcome then
      arrives asynchronously (webhook) or never, and the caller must not assume either.
    - `refund` returns `RefundResult.failed(reason)` when the provider refuses it.
    - Calls happen inside the command's transaction, so an implementation must be
      quick to answer (pending rather than blocking on a slow provider).
    """

    def charge(
        self, order_id: str, amount: Money, token: str, idempotency_key: str
    ) -> ChargeResult: ...

    def refund(
        self, provider_reference: str, amount: Money, idempotency_key: str
    ) -> RefundResult: ...


class SimulatedGateway:
    """A provider that answers by card token, for development and tests.

    `tok_visa` succeeds, `tok_declined` and `tok_insufficient_funds` fail with that
    reason, `tok_async` stays pending until a webhook completes it, `tok_timeout`
    stays pending forever; any other token fails as `invalid_token`. Refunds succeed.
    """

    ASYNC_PREFIX = "sim_async_"
    FAILURES = {"tok_declined": "card_declined", "tok_insufficient_funds": "insufficient_funds"}
    PENDING = frozenset({"tok_async", "tok_timeout"})

    def charge(
        self, order_id: str, amount: Money, token: str, idempotency_key: str
    ) -> ChargeResult:
        reference = _reference("ch", idempotency_key)
        if token == "tok_visa":
            return ChargeResult.succeeded(reference)
        if token == "tok_async":
            # The simulated provider will call back for these (see ASYNC_PREFIX).
            return ChargeResult.pending(_reference("async", idempotency_key))
        if token in self.PENDING:
            return ChargeResult.pending(reference)
        return ChargeResult.failed(self.FAILURES.get(token, "invalid_token"))

    def refund(self, provider_reference: str, amount: Money, idempotency_key: str) -> RefundResult:
        return RefundResult.succeeded(_reference("re", idempotency_key))


def _reference(prefix: str, idempotency_key: str) -> str:
    return f"sim_{prefix}_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]}"
