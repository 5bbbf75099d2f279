"""HTTP request and response shapes of the payments context."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from kernel.http import AcceptedSchema


class RefundPaymentSchema(ma.Schema):
    reason = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Why the money goes back, for the audit trail"},
    )


class RefundAcceptedSchema(AcceptedSchema):
    order_id = ma.fields.String(required=True)
