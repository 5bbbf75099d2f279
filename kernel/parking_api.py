# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""Parked keys over HTTP: list them, retry one after a fix, or skip one with a reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from marshmallow import validate
from sqlalchemy import Engine

from kernel import parking
from kernel.auth import Authenticator
from kernel.errors import ParkedKeyBusy, StillFailing
from kernel.http import (
    ADMIN_ONLY,
    OPERATOR_ONLY,
    BearerAuth,
    Blueprint,
    documented_problem,
    guarded,
    reject,
)
from kernel.parking import ParkedKey, ParkingAction
from kernel.subscriptions import Subscriber, SubscriptionRunner

BUSY_RETRY_AFTER = "5"
Action = Callable[[Subscriber, str, str, str], int]  # (subscriber, key, actor, reason)


class ParkedArgsSchema(ma.Schema):
    subscription = ma.fields.String(validate=validate.Length(min=1, max=200))
    limit = ma.fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class ParkedKeySchema(ma.Schema):
    subscription = ma.fields.String(required=True)
    key = ma.fields.String(required=True, metadata={"description": "The order id"})
    partition = ma.fields.Integer(required=True)
    failed_position = ma.fields.Integer(
        required=True, metadata={"description": "The event it failed on"}
    )
    event_type = ma.fields.String(required=True)
    error = ma.fields.String(required=True, metadata={"description": "The latest error"})
    attempts = ma.fields.Integer(required=True)
    parked_at = ma.fields.DateTime(required=True)
    retried_at = ma.fields.DateTime(allow_none=True, required=True)
    events = ma.fields.Integer(
        required=True, metadata={"description": "Events of the key waiting for a retry"}
    )


class ParkingActionSchema(ma.Schema):
    action = ma.fields.String(required=True)
    actor = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    events = ma.fields.Integer(required=True)
    at = ma.fields.DateTime(required=True)


class ParkedListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ParkedKeySchema), required=True)
    counts = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        required=True,
        metadata={"description": "Parked keys per subscription"},
    )


class ParkedDetailSchema(ParkedKeySchema):
    history = ma.fields.List(ma.fields.Nested(ParkingActionSchema), required=True)


class RetrySchema(ma.Schema):
    reason = ma.fields.String(load_default="", validate=validate.Length(max=500))


class SkipSchema(ma.Schema):
    reason = ma.fields.String(required=True, validate=validate.Length(min=1, max=500))


class RetriedSchema(ma.Schema):
    subscription = ma.fields.String(required=True)
    key = ma.fields.String(required=True)
    applied = ma.fields.Integer(required=True, metadata={"description": "Events applied"})


class SkippedSchema(ma.Schema):
    subscription = ma.fields.String(required=True)
    key = ma.fields.String(required=True)
    skipped = ma.fields.Integer(required=True, metadata={"description": "Events dropped"})


def blueprint(
    engine: Engine,
    runner: SubscriptionRunner,
    authenticator: Authenticator,
    subscriber: Callable[[str], Subscriber],
) -> Blueprint:
    """`subscriber(name)` finds a subscription's subscriber (KeyError if there is none)."""
    blp = Blueprint("parked", __name__, description="Events parked per key and subscription")
    auth = BearerAuth(authenticator)
    admin_only = guarded(blp, auth.admin, ADMIN_ONLY)
    operator_only = guarded(blp, auth.operator, OPERATOR_ONLY)

    def parked_or_404(name: str, key: str) -> tuple[Subscriber, ParkedKey]:
        with engine.connect() as conn:
            found = parking.find(conn, name, key)
        if found is None:
            reject(404, f"{key} is not parked for {name}.")
        try:
            return subscriber(name), found
        except KeyError:  # parked by a generation no longer running
            reject(404, f"There is no subscription named {name!r}.")

    def acting(act: Action, name: str, key: str, reason: str) -> int:
        """`act` (the runner's retry or skip) on a parked key as the admin: 404 when it
        is not parked, 503 when its partition's holder does not let go in time."""
        found, _ = parked_or_404(name, key)
        try:
            return act(found, key, auth.operator().actor, reason)
        except LookupError:
            reject(404, f"{key} is not parked for {name}.")
        except ParkedKeyBusy as busy:
            reject(503, str(busy), headers={"Retry-After": BUSY_RETRY_AFTER})

    @blp.route("/admin/api/parked", methods=["GET"])
    @admin_only
    @blp.arguments(ParkedArgsSchema(), location="query")
    @blp.response(200, ParkedListSchema)
    def listing(args: dict[str, Any]) -> dict[str, Any]:
        """Keys (orders) whose events a subscription passes over since a handler kept
        failing on one of them, oldest first."""
        with engine.connect() as conn:
            only = args.get("subscription")
            found = parking.listing(conn, subscription=only, limit=args["limit"])
            return {"items": [parked_key(p) for p in found], "counts": parking.counts(conn)}

    @blp.route("/admin/api/parked/<subscription>/<key>", methods=["GET"])
    @admin_only
    @blp.response(200, ParkedDetailSchema)
    @documented_problem(blp, 404, "The key is not parked for that subscription")
    def detail(subscription: str, key: str) -> dict[str, Any]:
        """One parked key, with who parked, retried or skipped it and why."""
        _, found = parked_or_404(subscription, key)
        with engine.connect() as conn:
            history = parking.actions(conn, subscription, key)
        return parked_key(found) | {"history": [action(a) for a in history]}

    @blp.route("/admin/api/parked/<subscription>/<key>/retry", methods=["POST"])
    @operator_only
    @blp.arguments(RetrySchema())
    @blp.response(200, RetriedSchema)
    @documented_problem(blp, 404, "The key is not parked for that subscription")
    @documented_problem(blp, 409, "The parked events failed again; they stay parked")
    @documented_problem(blp, 503, "Its partition is busy; see Retry-After")
    def retry(body: dict[str, str], subscription: str, key: str) -> dict[str, Any]:
        """Apply the key's parked events in order (after a fix) and let its later events
        flow again."""
        try:
            applied = acting(runner.retry, subscription, key, body["reason"])
        except StillFailing as failing:
            reject(409, f"The parked events failed again: {failing}", code="still_failing")
        return {"subscription": subscription, "key": key, "applied": applied}

    @blp.route("/admin/api/parked/<subscription>/<key>/skip", methods=["POST"])
    @operator_only
    @blp.arguments(SkipSchema())
    @blp.response(200, SkippedSchema)
    @documented_problem(blp, 404, "The key is not parked for that subscription")
    @documented_problem(blp, 503, "Its partition is busy; see Retry-After")
    def skip(body: dict[str, str], subscription: str, key: str) -> dict[str, Any]:
        """Drop the key's parked events unapplied, saying why, and let its later events
        flow again."""
        skipped = acting(runner.skip, subscription, key, body["reason"])
        return {"subscription": subscription, "key": key, "skipped": skipped}

    return blp


def parked_key(found: ParkedKey) -> dict[str, Any]:
    return {
        "subscription": found.subscription,
        "key": found.key,
        "partition": found.partition,
        "failed_position": found.failed_at.position,
        "event_type": found.event_type,
        "error": found.error,
        "attempts": found.attempts,
        "parked_at": found.parked_at,
        "retried_at": found.retried_at,
        "events": found.events,
    }


def action(done: ParkingAction) -> dict[str, Any]:
    return {
        "action": done.action,
        "actor": done.actor,
        "reason": done.reason,
        "events": done.events,
        "at": done.at,
    }
