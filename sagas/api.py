# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""Admin view of the order-fulfillment sagas."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from marshmallow import validate
from sqlalchemy import Engine

from kernel.auth import Authenticator
from kernel.http import BearerAuth, Blueprint, guarded
from kernel.status_api import SubscriptionStatusSchema
from sagas import store


class SagaArgsSchema(ma.Schema):
    state = ma.fields.String(validate=validate.OneOf(store.COUNTED))
    limit = ma.fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class SagaSchema(ma.Schema):
    order_id = ma.fields.String(required=True)
    state = ma.fields.String(required=True)
    stuck = ma.fields.Boolean(required=True, metadata={"description": "Past its deadline"})
    step = ma.fields.String(required=True)
    reservation = ma.fields.String(required=True)
    payment = ma.fields.String(required=True)
    deadline = ma.fields.String(allow_none=True, required=True)
    started_at = ma.fields.String(required=True)
    updated_at = ma.fields.String(required=True)
    history = ma.fields.List(ma.fields.Dict(), required=True)


class SagaListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(SagaSchema), required=True)
    counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    subscription = ma.fields.Nested(
        SubscriptionStatusSchema,
        required=True,
        metadata={"description": "The saga's subscription: checkpoint, lag, each partition"},
    )


def blueprint(
    engine: Engine, authenticator: Authenticator, subscription: Callable[[], dict[str, Any]]
) -> Blueprint:
    """The admin view of the sagas whose state lives in `engine`'s database, with their
    subscription's status as `subscription()` reads it."""
    blp = Blueprint("sagas", __name__, description="Order-fulfillment sagas")
    auth = BearerAuth(authenticator)
    admin_only = guarded(blp, auth.admin, "A customer token cannot use admin endpoints")

    @blp.route("/admin/api/sagas", methods=["GET"])
    @admin_only
    @blp.arguments(SagaArgsSchema(), location="query")
    @blp.response(200, SagaListSchema)
    def sagas(args: dict[str, Any]) -> dict[str, Any]:
        """Sagas newest first, by state ("stuck": in progress past the payment deadline)."""
        with engine.connect() as conn:
            return {
                "items": store.listing(conn, args.get("state"), args["limit"]),
                "counts": store.counts(conn),
                "subscription": subscription(),
            }

    return blp
