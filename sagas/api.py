# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""Admin view of the order-fulfillment sagas."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app
from flask_smorest import Blueprint
from marshmallow import validate
from sqlalchemy import Engine

from kernel.http import guarded, require_admin
from sagas import store

blueprint = Blueprint("sagas", __name__, description="Order-fulfillment sagas")
admin_only = guarded(blueprint, require_admin, "A customer token cannot use admin endpoints")

STATES = ("in_progress", "completed", "compensated", "stuck")


class SagaArgsSchema(ma.Schema):
    state = ma.fields.String(validate=validate.OneOf(STATES))
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


@blueprint.route("/admin/api/sagas", methods=["GET"])
@admin_only
@blueprint.arguments(SagaArgsSchema(), location="query")
@blueprint.response(200, SagaListSchema)
def sagas(args: dict[str, Any]) -> dict[str, Any]:
    """Sagas newest first, by state ("stuck": in progress past the payment deadline)."""
    engine: Engine = current_app.extensions["saga_engine"]
    with engine.connect() as conn:
        return {
            "items": store.listing(conn, args.get("state"), args["limit"]),
            "counts": store.counts(conn),
        }
