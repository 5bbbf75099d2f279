"""Request and response bodies of the admin product endpoints."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from kernel.http import AcceptedSchema

SKU_PATTERN = r"^[A-Z0-9][A-Z0-9-]{1,31}$"
MAX_AMOUNT = 10**9
MAX_QUANTITY = 10**6


class PriceSchema(ma.Schema):
    amount = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=MAX_AMOUNT, max_inclusive=False),
        metadata={"description": "Minor units (cents)"},
    )
    currency = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z]{3}$", error="Use an ISO 4217 code such as EUR."),
    )


class NewProductSchema(ma.Schema):
    sku = fields.String(
        required=True,
        validate=validate.Regexp(
            SKU_PATTERN, error="2-32 uppercase letters, digits or dashes, not starting with a dash."
        ),
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    price = fields.Nested(PriceSchema, required=True)
    stock = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=MAX_QUANTITY)
    )


class RestockSchema(ma.Schema):
    quantity = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY)
    )


class ProductAcceptedSchema(AcceptedSchema):
    sku = fields.String(required=True)
