"""HTTP request and response shapes of the payments context."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from kernel.http import AcceptedSchema, MoneyInSchema, MoneySchema


class RefundPaymentSchema(ma.Schema):
    reason = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Why the money goes back, for the audit trail"},
    )
    amount = ma.fields.Nested(
        MoneyInSchema,
        metadata={"description": "Give back this much only (a goodwill or a return's refund"
                  " asked again); without it, everything captured not yet refunded"},
    )  # fmt: skip
    refund_id = ma.fields.String(
        validate=[validate.Length(min=1, max=100), validate.Regexp(r"^[\x21-\x7e]+\Z")],
        metadata={"description": "Names the refund: asking again under it changes nothing."
                  " Required with `amount` (a retried partial refund must not pay twice)"},
    )  # fmt: skip

    @ma.validates_schema
    def named_when_partial(self, data: dict[str, object], **_: object) -> None:
        if "amount" in data and "refund_id" not in data:
            raise ma.ValidationError("Required with `amount`.", "refund_id")


class RefundAcceptedSchema(AcceptedSchema):
    order_id = ma.fields.String(required=True)


class CustomerActionSchema(ma.Schema):
    provider = ma.fields.String(required=True, metadata={"example": "stripe"})
    payment_intent = ma.fields.String(required=True, metadata={"description": "pi_..."})
    status = ma.fields.String(
        required=True, metadata={"description": "The PaymentIntent's status at Stripe"}
    )
    next_action = ma.fields.String(
        allow_none=True,
        metadata={"description": "What Stripe.js must do (use_stripe_sdk, redirect_to_url)"},
    )
    client_secret = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "Hand to Stripe.js (handleNextAction) to let the customer"
            " authenticate; present while an action is due"
        },
    )


class PaymentStatusSchema(ma.Schema):
    status = ma.fields.String(
        required=True,
        metadata={
            "description": "requested, pending (waits on the customer), succeeded, failed,"
            " refunding, refunded, abandoned or cancelling"
        },
    )
    amount = ma.fields.Nested(MoneySchema, required=True)
    action = ma.fields.Nested(
        CustomerActionSchema,
        allow_none=True,
        metadata={"description": "While pending: what the customer must do at Stripe"},
    )
