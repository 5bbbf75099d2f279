"""HTTP shapes of the cart endpoints; request schemas list every bad field."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from kernel.http import AcceptedSchema
from orders.carts import MAX_LINES, MAX_UNITS
from orders.schemas import (
    AddressSchema,
    OrderLineSchema,
    PaymentMethodSchema,
    SessionSchema,
    SignInSchema,
    _text,
)


class CartAcceptedSchema(AcceptedSchema):
    cart_id = ma.fields.String(required=True)


class AddItemSchema(ma.Schema):
    sku = _text(32)
    quantity = ma.fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_UNITS)
    )


class StartCartSchema(ma.Schema):
    lines = ma.fields.List(
        ma.fields.Nested(OrderLineSchema),
        load_default=list,
        validate=validate.Length(max=MAX_LINES),
        metadata={"description": "Products to put in the cart at once (optional)"},
    )


class ChangeQuantitySchema(ma.Schema):
    quantity = ma.fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=MAX_UNITS),
        metadata={"description": "The line's new quantity; 0 removes the line"},
    )


class ApplyCouponSchema(ma.Schema):
    code = _text(40, description="Checked at checkout, by the pricing context")


class MergeCartSchema(ma.Schema):
    cart_id = ma.fields.UUID(
        required=True, metadata={"description": "The anonymous cart to merge into yours"}
    )


class CheckOutCartSchema(ma.Schema):
    shipping_address = ma.fields.Nested(AddressSchema, required=True)
    billing_address = ma.fields.Nested(
        AddressSchema, metadata={"description": "Where the invoice goes; default: shipping"}
    )
    payment = ma.fields.Nested(PaymentMethodSchema, required=True)


class CheckedOutSchema(AcceptedSchema):
    order_id = ma.fields.String(required=True)
    cart_id = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"example": "pending"})


class SignInWithCartSchema(SignInSchema):
    cart_id = ma.fields.UUID(
        metadata={
            "description": "An anonymous cart to merge into the customer's cart once signed in"
        }
    )


class SignedInSchema(SessionSchema):
    cart_id = ma.fields.String(required=True, metadata={"description": "The customer's own cart"})
    cart_merged = ma.fields.Boolean(
        required=True,
        metadata={
            "description": "Whether the anonymous cart given was merged into it (false"
            " without one, or when it was gone or would not fit)"
        },
    )
    consistency_token = ma.fields.String(
        allow_none=True,
        metadata={"description": "Pass to GET /api/cart to read the merge; null if none"},
    )
