"""The payment gateway on Stripe's API, through Stripe's official SDK.

A charge is one PaymentIntent, created and confirmed in one call with the payment's
idempotency key and the order in its metadata (the webhook's way back to the order).
Every call is bounded by a connect and a read timeout, and the SDK retries nothing
itself: a call whose outcome is unknown raises ProviderUnavailable, and the job that
made it is retried with the same key.
"""

from __future__ import annotations

import contextlib
from typing import Any

import stripe

from kernel.money import Money
from payments.gateway import (
    ChargeRequest,
    ChargeResult,
    CustomerAction,
    ProviderUnavailable,
    RefundResult,
)

PENDING_STATUSES = frozenset(
    {"requires_action", "requires_confirmation", "requires_capture", "processing"}
)
"""A PaymentIntent in one of these waits on the customer (3-D Secure) or the network."""
UNKNOWN_OUTCOME = (
    stripe.APIConnectionError,  # includes timeouts: the request may have been acted on
    stripe.APIError,  # 5xx, and 409: a request with the same key is still in flight
    stripe.RateLimitError,
)
"""Errors after which the call is made again with the same key. Not among them:
IdempotencyError (the key was used with other parameters: asking again cannot help,
and it means a bug), authentication and permission errors (a misconfiguration)."""


class StripeGateway:
    def __init__(
        self,
        api_key: str,
        api_base: str | None = None,
        *,
        connect_timeout: float = 2.0,
        read_timeout: float = 10.0,
    ) -> None:
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=(connect_timeout, read_timeout)),
        )

    def charge(self, request: ChargeRequest) -> ChargeResult:
        params: dict[str, Any] = {
            "amount": request.amount.amount,
            "currency": request.amount.currency.lower(),
            "payment_method": request.payment_method,
            "payment_method_types": ["card"],
            "confirm": True,
            "metadata": {"order_id": request.order_id, "attempt": str(request.attempt)},
        }
        try:
            intent = self.client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]  # the SDK's TypedDict
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.CardError as declined:
            return ChargeResult.failed(_decline_reason(declined), _intent_of(declined))
        except UNKNOWN_OUTCOME as error:
            raise ProviderUnavailable(f"charging order {request.order_id}: {error}") from error
        except stripe.InvalidRequestError as refused:
            # No such payment method, or one that cannot be used: the charge never started.
            return ChargeResult.failed(refused.code or "invalid_payment_method")
        return charge_result(intent.to_dict())

    def charge_status(self, reference: str) -> ChargeResult:
        try:
            intent = self.client.v1.payment_intents.retrieve(reference)
        except UNKNOWN_OUTCOME as error:
            raise ProviderUnavailable(f"looking up {reference}: {error}") from error
        except stripe.InvalidRequestError as refused:  # no such PaymentIntent
            return ChargeResult.failed(refused.code or "unknown_payment_intent", reference)
        return charge_result(intent.to_dict())

    def customer_action(self, reference: str) -> CustomerAction:
        try:
            intent = self.client.v1.payment_intents.retrieve(reference).to_dict()
        except UNKNOWN_OUTCOME as error:
            raise ProviderUnavailable(f"looking up {reference}: {error}") from error
        action = intent.get("next_action")
        kind = action.get("type") if isinstance(action, dict) else None
        return CustomerAction(
            reference,
            str(intent.get("status")),
            str(kind) if kind else None,
            intent.get("client_secret") if kind else None,
        )

    def fence(self, request: ChargeRequest) -> ChargeResult:
        """Stripe keeps the first request made with an idempotency key and refuses the key
        with other parameters (IdempotencyError). So a harmless request (an intent that is
        neither confirmed nor given a payment method) under the charge's key either takes
        the key, and a charge call still on its way will be refused, or is refused because
        a charge call took it first: then that call, repeated with its own parameters,
        replays what Stripe answered it, without charging again."""
        claim = {
            "amount": request.amount.amount,
            "currency": request.amount.currency.lower(),
            "payment_method_types": ["card"],
            "metadata": {"order_id": request.order_id, "attempt": str(request.attempt),
                         "fence": "abandoned"},
        }  # fmt: skip
        try:
            unused = self.client.v1.payment_intents.create(
                params=claim,  # type: ignore[arg-type]  # the SDK's TypedDict
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.IdempotencyError:
            return self.charge(request)  # replayed: Stripe's answer to the earlier call
        except UNKNOWN_OUTCOME as error:
            raise ProviderUnavailable(f"fencing order {request.order_id}: {error}") from error
        with contextlib.suppress(stripe.StripeError):  # tidiness only: it can charge nothing
            self.client.v1.payment_intents.cancel(unused.id)
        return ChargeResult.failed("abandoned")

    def cancel(self, reference: str, idempotency_key: str) -> ChargeResult:
        try:
            intent = self.client.v1.payment_intents.cancel(
                reference, options={"idempotency_key": idempotency_key}
            )
        except UNKNOWN_OUTCOME as error:
            raise ProviderUnavailable(f"cancelling {reference}: {error}") from error
        except stripe.InvalidRequestError:
            # Not cancellable any more (it succeeded, or was cancelled already): say how
            # it ended.
            return self.charge_status(reference)
        return charge_result(intent.to_dict())

    def refund(
        self, order_id: str, charge_reference: str, amount: Money, idempotency_key: str
    ) -> RefundResult:
        params = {
            "payment_intent": charge_reference,
            "amount": amount.amount,
            "metadata": {"order_id": order_id, "refund_key": idempotency_key},
        }
        try:
            refund = self.client.v1.refunds.create(
                params=params,  # type: ignore[arg-type]  # the SDK's TypedDict
                options={"idempotency_key": idempotency_key},
            )
        except UNKNOWN_OUTCOME as error:
            raise ProviderUnavailable(f"refunding order {order_id}: {error}") from error
        except stripe.InvalidRequestError as refused:
            if refused.code == "charge_already_refunded":
                return self._earlier_refund(charge_reference)
            return RefundResult.failed(refused.code or refused.user_message or "refused")
        if refund.status in ("succeeded", "pending"):  # pending: on its way back
            return RefundResult.succeeded(refund.id)
        return RefundResult.failed(refund.failure_reason or refund.status or "refused")

    def _earlier_refund(self, charge_reference: str) -> RefundResult:
        """The charge was refunded already (from the provider's dashboard, say): that
        refund is the answer."""
        try:
            found = self.client.v1.refunds.list(params={"payment_intent": charge_reference})
        except UNKNOWN_OUTCOME as error:
            raise ProviderUnavailable(f"listing refunds of {charge_reference}: {error}") from error
        if not found.data:
            return RefundResult.failed("charge_already_refunded")
        return RefundResult.succeeded(found.data[0].id, whole_charge=True)


def charge_result(intent: dict[str, Any]) -> ChargeResult:
    """Where a PaymentIntent (as Stripe's JSON) stands, as a charge result."""
    status, reference = intent.get("status"), str(intent["id"])
    if status == "succeeded":
        received = intent.get("amount_received")
        return ChargeResult.succeeded(reference, received if isinstance(received, int) else None)
    if status in PENDING_STATUSES:
        return ChargeResult.pending(reference)
    if status == "canceled":
        return ChargeResult.failed("canceled", reference)
    return ChargeResult.failed(payment_error_reason(intent.get("last_payment_error")), reference)


def payment_error_reason(error: Any) -> str:
    """The most precise reason Stripe gives: the decline code, else the error code."""
    if not isinstance(error, dict):
        return "unspecified"
    return str(error.get("decline_code") or error.get("code") or "unspecified")


def _decline_reason(declined: stripe.CardError) -> str:
    detail = declined.error
    return str((detail and detail.decline_code) or declined.code or "card_declined")


def _intent_of(declined: stripe.CardError) -> str | None:
    intent = declined.error.payment_intent if declined.error else None
    return intent.id if intent is not None else None
