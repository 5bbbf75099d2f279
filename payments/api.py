# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""HTTP endpoints of the payments context: translate requests into commands."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from flask import request
from marshmallow import validate

from kernel.auth import Authenticator
from kernel.command_bus import CommandBus
from kernel.errors import ConcurrencyError
from kernel.http import (
    OPERATOR_ONLY,
    BearerAuth,
    Blueprint,
    Commands,
    command_metadata,
    documented_problem,
    guarded,
    reject,
)
from payments.commands import RefundPayment
from payments.gateway import ProviderUnavailable
from payments.inbox import PaymentInbox
from payments.provider_calls import PROVIDER_ACTOR, ProviderCalls
from payments.schemas import PaymentStatusSchema, RefundAcceptedSchema, RefundPaymentSchema
from payments.webhooks import SIGNATURE_HEADER, BadWebhook, verified_event


@dataclass(frozen=True, slots=True)
class WebhookKey:
    """How the provider's events are verified: the webhook signing secret, and how far
    (seconds) a signature's timestamp may be from now."""

    secret: str
    tolerance: int


class WebhookReceiptSchema(ma.Schema):
    status = ma.fields.String(
        required=True,
        validate=validate.OneOf(["accepted", "duplicate", "ignored"]),
        metadata={
            "description": "accepted: recorded and acted on; duplicate: this event id was"
            " received before and nothing changed; ignored: recorded, but it asks nothing"
            " of the shop or the payment has moved on (see reason)"
        },
    )
    reason = ma.fields.String(metadata={"description": "Why it was ignored, machine-readable"})
    detail = ma.fields.String(metadata={"description": "Why it was ignored, for people"})
    consistency_token = ma.fields.String(
        metadata={"description": "Pass to a query to read this write (accepted only)"}
    )


REFUND_FAILURES = {"invalid_amount": 422, "currency_mismatch": 422}
_SIGNATURE_PARAMETER = {
    "in": "header",
    "name": SIGNATURE_HEADER,
    "required": True,
    "schema": {"type": "string", "example": "t=1767225600,v1=5257a869e7ec..."},
    "description": "Stripe's signature: `t=<unix seconds>,v1=<hex HMAC-SHA256(webhook secret,"
    ' "<t>." + raw body)>`; the timestamp must be within WEBHOOK_TOLERANCE seconds of now',
}
_EVENT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["id", "type", "data"],
                "properties": {
                    "id": {"type": "string", "example": "evt_1QxYz"},
                    "type": {"type": "string", "example": "payment_intent.succeeded"},
                    "data": {
                        "type": "object",
                        "required": ["object"],
                        "properties": {"object": {"type": "object"}},
                    },
                },
            }
        }
    },
}


def blueprint(
    bus: CommandBus,
    authenticator: Authenticator,
    inbox: PaymentInbox,
    webhooks: WebhookKey,
    provider_calls: ProviderCalls,
) -> Blueprint:
    """Refunds (admin), a customer's payment and what it waits on, and the provider's
    webhook, which goes through `inbox`."""
    blp = Blueprint("payments", __name__, description="payments commands")
    auth, commands = BearerAuth(authenticator), Commands(bus)
    operator_only = guarded(blp, auth.operator, OPERATOR_ONLY, unauthorized="No valid bearer token")
    customer_only = guarded(
        blp,
        auth.customer,
        "The admin token cannot act as a customer",
        unauthorized="Missing, forged or expired bearer token",
    )

    @blp.get("/api/orders/<uuid:order_id>/payment")
    @customer_only
    @blp.doc(summary="The payment of one of the customer's orders")
    @blp.response(200, PaymentStatusSchema)
    @documented_problem(blp, 404, "The order is not the customer's, or has no payment yet")
    @documented_problem(blp, 503, "The payment provider did not answer; retry later")
    def customer_payment(order_id: uuid.UUID) -> dict[str, Any]:
        """Where the payment stands and, while Stripe waits on the customer (3-D Secure),
        what they must do: hand `action.client_secret` to Stripe.js's handleNextAction.
        Asked of Stripe at each request (the client secret is never stored); Stripe's
        webhook then completes the payment, and the order is confirmed."""
        try:
            found = provider_calls.for_customer(str(order_id), auth.customer())
        except ProviderUnavailable:
            reject(503, "The payment provider did not answer.", headers={"Retry-After": "2"})
        if found is None:
            reject(404, "The order has no payment of yours.")
        action = found.action
        return {
            "status": found.status,
            "amount": {"amount": found.amount.amount, "currency": found.amount.currency},
            "action": None
            if action is None
            else {
                "provider": "stripe",
                "payment_intent": action.reference,
                "status": action.status,
                "next_action": action.next_action,
                "client_secret": action.client_secret,
            },
        }

    @blp.post("/admin/api/orders/<order_id>/refund")
    @operator_only
    @blp.doc(summary="Refund an order's payment")
    @blp.arguments(RefundPaymentSchema())
    @blp.response(202, RefundAcceptedSchema)
    @documented_problem(blp, 404, "The order has no payment")
    @documented_problem(
        blp,
        409,
        "The payment is not refundable (payment_not_refundable), or less than `amount` is"
        " left to refund (refund_exceeds_payment)",
    )
    @documented_problem(
        blp, 422, "Invalid fields, or an amount in another currency than the payment's"
    )
    def refund_payment(body: dict[str, Any], order_id: str) -> dict[str, str]:
        """Give the order's payment back to the customer, all of what is left or `amount`
        of it; refunding twice (or under the same `refund_id`) changes nothing.

        Accepted means the refund is recorded as asked for (the order can no longer ship);
        a payments worker then refunds the amount captured at the provider, and the
        order's payment reads `refunded` (or `succeeded` with `refund_failure`, when
        the provider refused).
        """
        metadata = command_metadata(auth.operator().actor)
        command = RefundPayment(
            order_id, body["reason"], body.get("amount"), body.get("refund_id", "")
        )
        result = commands.dispatch(command, metadata, REFUND_FAILURES)
        return {"order_id": order_id, "consistency_token": result.consistency_token}

    @blp.post("/webhooks/stripe")
    @blp.doc(
        summary="Receive Stripe's webhook events",
        parameters=[_SIGNATURE_PARAMETER],
        requestBody=_EVENT_BODY,
    )
    @blp.response(
        200,
        WebhookReceiptSchema,
        description="Acknowledged (accepted, duplicate or ignored): Stripe stops retrying",
    )
    @documented_problem(
        blp, 400, "The signature is missing, wrong or too old, or the body is not an event"
    )
    @documented_problem(blp, 503, "The payment changed concurrently too often; retry later")
    def receive_stripe_event() -> dict[str, str]:
        """Record the outcome of a charge or refund that Stripe reports.

        Authenticated by the signature alone, checked over the raw body before it is
        parsed. Every verified event is recorded in an inbox keyed by Stripe's event id,
        in the same transaction as its effect; a redelivery answers `duplicate` and
        changes nothing. Any 2xx tells Stripe to stop retrying, so an event that asks
        nothing of the shop, or comes too late to change a payment, is recorded and
        answered `ignored`, never an error.
        """
        try:
            event, payload = verified_event(
                request.get_data(),
                request.headers.get(SIGNATURE_HEADER),
                webhooks.secret,
                webhooks.tolerance,
            )
        except BadWebhook as error:
            reject(400, _sentence(str(error)))
        metadata = command_metadata(PROVIDER_ACTOR)
        try:
            receipt = inbox.receive(event, payload, correlation_id=metadata.correlation_id)
        except ConcurrencyError:
            reject(503, "The payment changed concurrently too often.", headers={"Retry-After": "1"})
        answer = {
            "status": receipt.status,
            "reason": receipt.reason,
            "detail": receipt.detail,
            "consistency_token": receipt.consistency_token,
        }
        return {key: value for key, value in answer.items() if value is not None}

    return blp


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + "."
