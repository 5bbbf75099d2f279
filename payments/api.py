# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""HTTP endpoints of the payments context: translate requests into commands."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from flask import request
from marshmallow import validate

from kernel.auth import Authenticator
from kernel.command_bus import CommandBus
from kernel.errors import ConcurrencyError
from kernel.http import (
    BearerAuth,
    Blueprint,
    Commands,
    View,
    command_metadata,
    documented_problem,
    guarded,
    reject,
)
from payments.commands import RefundPayment
from payments.inbox import PaymentInbox
from payments.schemas import RefundAcceptedSchema, RefundPaymentSchema
from payments.webhooks import (
    PROVIDER_ACTOR,
    SIGNATURE_HEADER,
    BadSignature,
    PaymentNotification,
    PaymentNotificationSchema,
    verify,
)


@dataclass(frozen=True, slots=True)
class WebhookKey:
    """How the provider's notifications are verified: the shared secret, and how far
    (seconds) a signature's timestamp may be from now."""

    secret: str
    tolerance: int


class WebhookReceiptSchema(ma.Schema):
    status = ma.fields.String(
        required=True,
        validate=validate.OneOf(["accepted", "duplicate", "ignored"]),
        metadata={
            "description": "accepted: the payment completed; duplicate: this event id was"
            " received before and nothing changed; ignored: recorded, but the payment is"
            " unknown or not pending (see reason)"
        },
    )
    reason = ma.fields.String(metadata={"description": "Why it was ignored, machine-readable"})
    detail = ma.fields.String(metadata={"description": "Why it was ignored, for people"})
    consistency_token = ma.fields.String(
        metadata={"description": "Pass to a query to read this write (accepted only)"}
    )


_SIGNATURE_PARAMETER = {
    "in": "header",
    "name": SIGNATURE_HEADER,
    "required": True,
    "schema": {"type": "string", "example": "t=1767225600,v1=5257a869e7ec..."},
    "description": '`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>`;'
    " the timestamp must be within the replay window (WEBHOOK_TOLERANCE seconds)",
}
_SIGNATURE_CHALLENGE = {"WWW-Authenticate": f'{SIGNATURE_HEADER} realm="payment-webhooks"'}


def blueprint(
    bus: CommandBus, authenticator: Authenticator, inbox: PaymentInbox, webhooks: WebhookKey
) -> Blueprint:
    """Refunds (admin) and the provider's webhook, which goes through `inbox`."""
    blp = Blueprint("payments", __name__, description="payments commands")
    auth, commands = BearerAuth(authenticator), Commands(bus)
    admin_only = guarded(
        blp, auth.admin, "The token is not the admin token", unauthorized="No valid bearer token"
    )

    @blp.post("/admin/api/orders/<order_id>/refund")
    @admin_only
    @blp.doc(summary="Refund an order's payment")
    @blp.arguments(RefundPaymentSchema())
    @blp.response(202, RefundAcceptedSchema)
    @documented_problem(blp, 404, "The order has no payment")
    @documented_problem(
        blp, 409, "The payment is not refundable (payment_not_refundable) or the provider refused"
    )
    def refund_payment(body: dict[str, Any], order_id: str) -> dict[str, str]:
        """Give the order's payment back to the customer; refunding twice changes nothing."""
        metadata = command_metadata(auth.admin().actor)
        result = commands.dispatch(RefundPayment(order_id, body["reason"]), metadata)
        return {"order_id": order_id, "consistency_token": result.consistency_token}

    @blp.post("/webhooks/payments")
    @_signed(blp, webhooks)
    @blp.doc(summary="Receive the payment provider's notification")
    @blp.arguments(PaymentNotificationSchema())
    @blp.response(
        200,
        WebhookReceiptSchema,
        description="Acknowledged (accepted, duplicate or ignored): the provider stops retrying",
    )
    @documented_problem(blp, 503, "The payment changed concurrently too often; retry later")
    def receive_payment_notification(notification: PaymentNotification) -> dict[str, str]:
        """Complete a pending payment with the provider's answer.

        Authenticated by the signature alone. Every accepted notification is recorded
        in an inbox keyed by the provider's event id, in the same transaction as its
        effect; a redelivery answers `duplicate` and changes nothing. Any 2xx tells
        the provider to stop retrying, so a notification that cannot complete a payment
        is recorded and answered `ignored`, never an error.
        """
        metadata = command_metadata(PROVIDER_ACTOR, notification.command_id)
        try:
            receipt = inbox.receive(
                notification, request.get_json(), correlation_id=metadata.correlation_id
            )
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


def _signed(blp: Blueprint, webhooks: WebhookKey) -> Callable[[View], View]:
    """Verify the signature over the raw body before it is parsed, so a forger learns
    nothing from validation errors; document the header and the 401. Place it above
    `arguments`."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            try:
                verify(
                    webhooks.secret,
                    request.get_data(),
                    request.headers.get(SIGNATURE_HEADER),
                    now=time.time(),
                    tolerance=webhooks.tolerance,
                )
            except BadSignature as error:
                reject(401, _sentence(str(error)), headers=_SIGNATURE_CHALLENGE)
            return view(*args, **kwargs)

        documented: View = blp.doc(parameters=[_SIGNATURE_PARAMETER])(checked)
        return documented_problem(
            blp, 401, "The signature is missing, malformed, wrong or outside the replay window"
        )(documented)

    return decorate


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + "."
