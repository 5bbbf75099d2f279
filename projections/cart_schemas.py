"""Query parameters and response shapes of the cart queries."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from kernel.http import MoneySchema
from projections.schemas import ConsistencySchema, ReadModelSchema


class CartArgsSchema(ConsistencySchema):
    country = ma.fields.String(
        validate=validate.Regexp(r"[A-Z]{2}\Z", error="Must be an ISO 3166-1 alpha-2 code."),
        metadata={"description": "Where it would ship (ISO 3166-1 alpha-2): the quote's tax"},
    )


class PriceChangeSchema(ma.Schema):
    was = ma.fields.Nested(MoneySchema, required=True)
    now = ma.fields.Nested(MoneySchema, required=True)


class CartLineSchema(ma.Schema):
    sku = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    quantity = ma.fields.Integer(required=True)
    unit_price = ma.fields.Nested(
        MoneySchema,
        required=True,
        allow_none=True,
        metadata={"description": "Today's price; null when the product is no longer sold"},
    )
    unit_price_when_added = ma.fields.Nested(MoneySchema, required=True)
    price_changed = ma.fields.Nested(
        PriceChangeSchema,
        required=True,
        allow_none=True,
        metadata={"description": "Set when today's price is not the one added at"},
    )
    line_total = ma.fields.Nested(MoneySchema, required=True, allow_none=True)
    available = ma.fields.Integer(required=True)
    availability = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "A note when fewer units are available than the line asks"},
    )


class CartSchema(ma.Schema):
    cart_id = ma.fields.String(required=True)
    lines = ma.fields.List(ma.fields.Nested(CartLineSchema), required=True)
    coupon_code = ma.fields.String(required=True, allow_none=True)
    item_count = ma.fields.Integer(required=True)
    subtotal = ma.fields.Nested(
        MoneySchema,
        required=True,
        allow_none=True,
        metadata={"description": "At today's prices, of what is still sold; null when empty"},
    )
    quote = ma.fields.Dict(
        required=True,
        allow_none=True,
        metadata={
            "description": "The pricing context's quote (discounts, tax, shipping, total);"
            " null when it cannot be quoted"
        },
    )
    expired = ma.fields.Boolean(
        required=True, metadata={"description": "Left untouched past CART_TTL: it is empty"}
    )
    last_order_id = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "The last order it became"}
    )
    updated_at = ma.fields.String(required=True, allow_none=True)


class CartViewSchema(ma.Schema):
    cart = ma.fields.Nested(CartSchema, required=True)
    read_model = ma.fields.Nested(ReadModelSchema, required=True)
