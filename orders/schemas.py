"""HTTP shapes of the orders endpoints; request schemas list every bad field."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import pycountry
from marshmallow import validate

from kernel.http import AcceptedSchema
from orders.commands import OrderLineRequest
from orders.events import Address


def _not_blank(value: str) -> None:
    if value and not value.strip():
        raise ma.ValidationError("Must not be blank.")


def _no_nul(value: str) -> None:
    # PostgreSQL refuses U+0000 in text and jsonb; a sealed field would slip it through
    # inside its ciphertext, so every free-text field refuses it up front, the same way.
    if "\x00" in value:
        raise ma.ValidationError("Must not contain a NUL character.")


def _text(max_length: int, **metadata: Any) -> ma.fields.String:
    return ma.fields.String(
        required=True,
        validate=[validate.Length(min=1, max=max_length), _not_blank, _no_nul],
        metadata=metadata,
    )


PASSWORD_LENGTH = (8, 256)


def _password(description: str) -> ma.fields.String:
    # Taken as sent, spaces and all: a password is never trimmed or normalised.
    return ma.fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=PASSWORD_LENGTH[0], max=PASSWORD_LENGTH[1]),
        metadata={"description": description, "format": "password"},
    )


def _email() -> ma.fields.Email:
    return ma.fields.Email(required=True, validate=validate.Length(max=254))


class RegisterCustomerSchema(ma.Schema):
    email = _email()
    name = _text(120)
    password = _password(f"{PASSWORD_LENGTH[0]} to {PASSWORD_LENGTH[1]} characters")


class SignInSchema(ma.Schema):
    email = _email()
    password = ma.fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=PASSWORD_LENGTH[1]),
        metadata={"format": "password"},
    )


class RenewSessionSchema(ma.Schema):
    refresh_token = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "The refresh token of the session's latest tokens"},
    )


class ChangePasswordSchema(ma.Schema):
    current_password = ma.fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=PASSWORD_LENGTH[1]),
        metadata={"format": "password"},
    )
    new_password = _password(f"{PASSWORD_LENGTH[0]} to {PASSWORD_LENGTH[1]} characters")


class SessionSchema(ma.Schema):
    """A session's tokens, given once: only their digests are kept."""

    customer_id = ma.fields.String(required=True)
    access_token = ma.fields.String(
        required=True,
        metadata={"description": "Send as `Authorization: Bearer <access_token>`"},
    )
    token = ma.fields.String(
        required=True,
        metadata={"description": "The access token again (the name earlier clients read)"},
    )
    token_type = ma.fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = ma.fields.Integer(
        required=True, metadata={"description": "Seconds the access token works for"}
    )
    refresh_token = ma.fields.String(
        required=True,
        metadata={
            "description": "Exchange at POST /api/sessions/renew for new tokens before it"
            " expires. Each use replaces it: keep the new one (the old one, presented again,"
            " ends the session)"
        },
    )
    refresh_expires_in = ma.fields.Integer(
        required=True, metadata={"description": "Seconds the refresh token works for"}
    )


class OrderLineSchema(ma.Schema):
    sku = _text(32)
    quantity = ma.fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=1000)
    )

    @ma.post_load
    def to_line(self, data: dict[str, Any], **_: Any) -> OrderLineRequest:
        return OrderLineRequest(**data)


COUNTRIES = frozenset(country.alpha_2 for country in pycountry.countries)


def _optional_text(max_length: int, **metadata: Any) -> ma.fields.String:
    return ma.fields.String(
        load_default="", validate=[validate.Length(max=max_length), _no_nul], metadata=metadata
    )


class AddressSchema(ma.Schema):
    name = _text(120)
    line1 = _text(120)
    line2 = _optional_text(120, description="Flat, floor, building (optional)")
    city = _text(120)
    region = _optional_text(120, description="State, province or county, where one is used")
    postal_code = _text(20)
    country = ma.fields.String(
        required=True,
        validate=validate.OneOf(COUNTRIES, error="Must be an ISO 3166-1 alpha-2 code, e.g. DE."),
        metadata={"description": "ISO 3166-1 alpha-2, upper case", "pattern": "^[A-Z]{2}$"},
    )

    @ma.post_load
    def to_address(self, data: dict[str, Any], **_: Any) -> Address:
        return Address(**data)


class PaymentMethodSchema(ma.Schema):
    token = _text(64, description="The payment provider's token for the customer's card")


class PlaceOrderSchema(ma.Schema):
    lines = ma.fields.List(
        ma.fields.Nested(OrderLineSchema), required=True, validate=validate.Length(min=1, max=50)
    )
    shipping_address = ma.fields.Nested(AddressSchema, required=True)
    billing_address = ma.fields.Nested(
        AddressSchema, load_default=None, metadata={"description": "Default: the shipping address"}
    )
    coupon_code = ma.fields.String(
        load_default=None,
        validate=validate.Regexp(
            r"^[A-Za-z0-9_-]{1,40}\Z", error="1-40 letters, digits, dashes or underscores."
        ),
        metadata={"description": "A coupon code (case-insensitive)"},
    )
    payment = ma.fields.Nested(PaymentMethodSchema, required=True)


class IdempotencyKeySchema(ma.Schema):
    key = ma.fields.String(
        data_key="Idempotency-Key",
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Retrying with the same key and body places one order only"},
    )


class OrderAcceptedSchema(AcceptedSchema):
    order_id = ma.fields.String(required=True)


class CustomerForgottenSchema(AcceptedSchema):
    customer_id = ma.fields.String(required=True)


class PendingOrderSchema(OrderAcceptedSchema):
    status = ma.fields.String(required=True, metadata={"example": "pending"})


class CancelOrderSchema(ma.Schema):
    reason = _text(500)


class ShipOrderSchema(ma.Schema):
    tracking_number = _text(64)
