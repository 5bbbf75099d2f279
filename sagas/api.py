# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""Admin view of the order-fulfillment sagas, and retrying a saga's step. (An operator
cancels a saga's order with `POST /admin/api/orders/<id>/cancel`: the saga compensates.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import marshmallow as ma
from marshmallow import validate
from sqlalchemy import Engine

from kernel.auth import Authenticator
from kernel.http import (
    ADMIN_ONLY,
    OPERATOR_ONLY,
    BearerAuth,
    Blueprint,
    documented_problem,
    guarded,
    reject,
)
from kernel.status_api import SubscriptionStatusSchema
from sagas import store
from sagas.order_fulfillment import NothingToRetry, OrderFulfillmentSaga


class SagaArgsSchema(ma.Schema):
    state = ma.fields.String(validate=validate.OneOf(store.COUNTED))
    limit = ma.fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class SagaSchema(ma.Schema):
    order_id = ma.fields.String(required=True)
    state = ma.fields.String(required=True)
    stuck = ma.fields.Boolean(
        required=True, metadata={"description": "At its step for longer than the step's bound"}
    )
    step = ma.fields.String(required=True)
    step_entered_at = ma.fields.String(required=True)
    at_step_seconds = ma.fields.Float(required=True)
    step_bound_seconds = ma.fields.Float(
        allow_none=True, required=True, metadata={"description": "null: a step it rests at"}
    )
    parked = ma.fields.Boolean(
        required=True, metadata={"description": "The saga parked this order's events"}
    )
    compensation = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "Why it was cancelled"}
    )
    reservation = ma.fields.String(required=True)
    payment = ma.fields.String(required=True)
    deadline = ma.fields.String(allow_none=True, required=True)
    started_at = ma.fields.String(required=True)
    updated_at = ma.fields.String(required=True)
    history = ma.fields.List(ma.fields.Dict(), required=True)


class SagaListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(SagaSchema), required=True)
    counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    step_bounds = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Float(),
        required=True,
        metadata={"description": "Seconds a saga may stay at each step before it is stuck"},
    )
    subscription = ma.fields.Nested(
        SubscriptionStatusSchema,
        required=True,
        metadata={"description": "The saga's subscription: checkpoint, lag, each partition"},
    )


class SagaActionSchema(ma.Schema):
    order_id = ma.fields.String(required=True)
    commands = ma.fields.List(
        ma.fields.String(), required=True, metadata={"description": "What each command did"}
    )


def blueprint(
    engine: Engine,
    authenticator: Authenticator,
    subscription: Callable[[], dict[str, Any]],
    saga: OrderFulfillmentSaga,
    bounds: store.StepBounds,
) -> Blueprint:
    """The admin view of the sagas whose state lives in `engine`'s database, with their
    subscription's status as `subscription()` reads it; `bounds` say when one is stuck."""
    blp = Blueprint("sagas", __name__, description="Order-fulfillment sagas")
    auth = BearerAuth(authenticator)
    admin_only = guarded(blp, auth.admin, ADMIN_ONLY)
    operator_only = guarded(blp, auth.operator, OPERATOR_ONLY)

    @blp.route("/admin/api/sagas", methods=["GET"])
    @admin_only
    @blp.arguments(SagaArgsSchema(), location="query")
    @blp.response(200, SagaListSchema)
    def sagas(args: dict[str, Any]) -> dict[str, Any]:
        """Sagas newest first, by state ("stuck": at a step longer than its bound, longest
        first)."""
        with engine.connect() as conn:
            return {
                "items": store.listing(conn, args.get("state"), args["limit"], bounds),
                "counts": store.counts(conn, bounds),
                "step_bounds": dict(bounds),
                "subscription": subscription(),
            }

    @blp.route("/admin/api/sagas/<uuid:order_id>/retry", methods=["POST"])
    @operator_only
    @blp.response(200, SagaActionSchema)
    @documented_problem(blp, 404, "No saga for that order")
    @documented_problem(blp, 409, "Its step waits on nothing the saga can issue again")
    def retry(order_id: uuid.UUID) -> dict[str, Any]:
        """Issue the saga's current step's commands again (after a fault lost or refused
        them): reserve, charge, confirm, or the compensation under way."""
        actor = auth.operator().actor
        try:
            results = saga.retry_step(str(order_id), actor, str(uuid.uuid4()))
        except LookupError:
            reject(404, f"There is no saga for order {order_id}.")
        except NothingToRetry as nothing:
            reject(409, str(nothing).capitalize() + ".", code="nothing_to_retry")
        return {"order_id": str(order_id), "commands": results}

    return blp
