"""Request and response bodies of the admin pricing endpoints; request schemas list every
bad field."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from kernel.http import MAX_AMOUNT, AcceptedSchema, MoneyInSchema, MoneySchema

SKU_PATTERN = r"^[A-Z0-9][A-Z0-9-]{1,31}\Z"
CURRENCY = validate.Regexp(r"^[A-Z]{3}\Z", error="Use an ISO 4217 code such as EUR.")
COUNTRY = validate.Regexp(r"^[A-Z]{2}\Z", error="Must be an ISO 3166-1 alpha-2 code, e.g. DE.")
SKU = validate.Regexp(
    SKU_PATTERN, error="2-32 uppercase letters, digits or dashes, not starting with a dash."
)
BASIS_POINTS = validate.Range(min=1, max=10_000)


def _no_nul(value: str) -> None:
    if "\x00" in value:
        raise ma.ValidationError("Must not contain a NUL character.")


def _description() -> fields.String:
    return fields.String(required=True, validate=[validate.Length(min=1, max=200), _no_nul])


class _OfferSchema(ma.Schema):
    """Exactly one of `percent_bp` and `amount_off`."""

    percent_bp = fields.Integer(
        strict=True, validate=BASIS_POINTS, metadata={"description": "Basis points: 1000 = 10 %"}
    )
    amount_off = fields.Nested(MoneyInSchema)
    starts_at = fields.AwareDateTime(metadata={"description": "ISO 8601 with a UTC offset"})
    ends_at = fields.AwareDateTime(metadata={"description": "ISO 8601 with a UTC offset"})

    @ma.validates_schema
    def _one_offer(self, data: dict[str, Any], **_: Any) -> None:
        if ("percent_bp" in data) == ("amount_off" in data):
            raise ma.ValidationError("Give exactly one of percent_bp and amount_off.", "percent_bp")
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts is not None and ends is not None and ends <= starts:
            raise ma.ValidationError("Must be after starts_at.", "ends_at")


class NewPromotionSchema(_OfferSchema):
    description = _description()
    skus = fields.List(
        fields.String(validate=SKU),
        load_default=list,
        validate=validate.Length(max=200),
        metadata={"description": "The products it applies to; none: the whole order"},
    )

    @ma.validates("skus")
    def _once(self, skus: list[str], **_: Any) -> None:
        if len(set(skus)) != len(skus):
            raise ma.ValidationError("Each SKU may be listed once.")


class NewCouponSchema(_OfferSchema):
    code = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[A-Za-z0-9_-]{1,40}\Z", error="1-40 letters, digits, dashes or underscores."
        ),
        metadata={"description": "Case-insensitive; stored upper case"},
    )
    description = _description()
    usage_limit = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=10**9)
    )
    min_subtotal = fields.Nested(MoneyInSchema)


class TaxRateInSchema(ma.Schema):
    rate_bp = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=10_000),
        metadata={"description": "Basis points: 1900 = 19 %"},
    )
    prices_include_tax = fields.Boolean(
        required=True,
        metadata={"description": "Whether the storefront shows prices there with tax"},
    )


class ListPriceInSchema(ma.Schema):
    amount = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=MAX_AMOUNT, max_inclusive=False),
        metadata={"description": "Minor units of the path's currency"},
    )


class TaxRateSchema(ma.Schema):
    country = fields.String(required=True)
    rate_bp = fields.Integer(required=True)
    prices_include_tax = fields.Boolean(required=True)


class TaxRateListSchema(ma.Schema):
    items = fields.List(fields.Nested(TaxRateSchema), required=True)


class ListPriceSchema(ma.Schema):
    sku = fields.String(required=True)
    price = fields.Nested(MoneySchema, required=True)


class ListPriceListSchema(ma.Schema):
    items = fields.List(fields.Nested(ListPriceSchema), required=True)


class PromotionSchema(ma.Schema):
    promotion_id = fields.String(required=True)
    description = fields.String(required=True)
    percent_bp = fields.Integer(required=True, metadata={"description": "0 for an amount off"})
    amount_off = fields.Nested(MoneySchema, allow_none=True, required=True)
    skus = fields.List(fields.String(), required=True)
    starts_at = fields.String(required=True)
    ends_at = fields.String(allow_none=True, required=True)
    ended = fields.Boolean(required=True)


class PromotionListSchema(ma.Schema):
    items = fields.List(fields.Nested(PromotionSchema), required=True)


class CouponSchema(ma.Schema):
    code = fields.String(required=True)
    description = fields.String(required=True)
    percent_bp = fields.Integer(required=True, metadata={"description": "0 for an amount off"})
    amount_off = fields.Nested(MoneySchema, allow_none=True, required=True)
    usage_limit = fields.Integer(required=True)
    redemptions = fields.Integer(
        required=True,
        metadata={"description": "Orders holding a use (cancelled ones give it back)"},
    )
    starts_at = fields.String(allow_none=True, required=True)
    ends_at = fields.String(allow_none=True, required=True)
    min_subtotal = fields.Nested(MoneySchema, allow_none=True, required=True)
    disabled = fields.Boolean(required=True)


class CouponListSchema(ma.Schema):
    items = fields.List(fields.Nested(CouponSchema), required=True)


class PricingAcceptedSchema(AcceptedSchema):
    id = fields.String(
        required=True, metadata={"description": "The rule changed: country, currency, id or code"}
    )
