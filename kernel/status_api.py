"""Subscription status over HTTP: the schemas and the serialisers the admin endpoints
of the read side and of the saga share."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from kernel.horizon import RunningWriter
from kernel.subscriptions import PartitionStatus, SubscriptionStatus


class PartitionStatusSchema(ma.Schema):
    partition = ma.fields.Integer(required=True)
    checkpoint = ma.fields.String(required=True)
    lag_events = ma.fields.Integer(required=True)
    lag_seconds = ma.fields.Float(required=True)
    state = ma.fields.String(required=True)
    holder = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "host:pid of the worker holding its lease (null: none)"},
    )
    lease_expires_at = ma.fields.DateTime(
        allow_none=True,
        required=True,
        metadata={"description": "When the holder's lease runs out unless renewed"},
    )
    unheld_seconds = ma.fields.Float(
        allow_none=True,
        required=True,
        metadata={"description": "How long it has had no holder (null: held)"},
    )
    failed_position = ma.fields.Integer(allow_none=True, required=True)
    last_error = ma.fields.String(allow_none=True, required=True)


class SubscriptionStatusSchema(ma.Schema):
    subscription = ma.fields.String(required=True)
    checkpoint = ma.fields.String(
        required=True, metadata={"description": "The least of its partitions' checkpoints"}
    )
    head = ma.fields.String(required=True)
    lag_events = ma.fields.Integer(
        required=True, metadata={"description": "Summed over its partitions"}
    )
    lag_seconds = ma.fields.Float(
        required=True, metadata={"description": "The largest of its partitions'"}
    )
    state = ma.fields.String(required=True)
    failed_position = ma.fields.Integer(allow_none=True, required=True)
    last_error = ma.fields.String(allow_none=True, required=True)
    partitions = ma.fields.List(ma.fields.Nested(PartitionStatusSchema), required=True)
    parked_keys = ma.fields.Integer(
        required=True,
        metadata={"description": "Keys (orders) whose events it passes over until retried"},
    )


class RunningWriterSchema(ma.Schema):
    pid = ma.fields.Integer(required=True)
    transaction_id = ma.fields.Integer(allow_none=True, required=True)
    age_seconds = ma.fields.Float(required=True)
    state = ma.fields.String(allow_none=True, required=True)
    query = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "Its current or last statement"}
    )
    application = ma.fields.String(allow_none=True, required=True)
    client = ma.fields.String(allow_none=True, required=True)


def subscription_status(sub: SubscriptionStatus) -> dict[str, Any]:
    """A subscription's status as the admin API answers it (SubscriptionStatusSchema)."""
    return {
        "subscription": sub.name,
        "checkpoint": sub.checkpoint.token(),
        "head": sub.head.token(),
        "lag_events": sub.lag_events,
        "lag_seconds": round(sub.lag_seconds, 3),
        "state": _state(sub.state, sub.failed_position),
        "failed_position": sub.failed_position,
        "last_error": sub.last_error,
        "partitions": [partition_status(p) for p in sub.partitions],
        "parked_keys": sub.parked_keys,
    }


def partition_status(part: PartitionStatus) -> dict[str, Any]:
    unheld = part.unheld_seconds
    return {
        "partition": part.partition,
        "checkpoint": part.checkpoint.token(),
        "lag_events": part.lag_events,
        "lag_seconds": round(part.lag_seconds, 3),
        "state": _state(part.state, part.failed_position),
        "holder": part.holder,
        "lease_expires_at": part.lease_expires_at,
        "unheld_seconds": None if unheld is None else round(unheld, 3),
        "failed_position": part.failed_position,
        "last_error": part.last_error,
    }


def _state(state: str, failed_position: int | None) -> str:
    return state if state != "failed" else f"failed at {failed_position}"


def running_writer(writer: RunningWriter) -> dict[str, Any]:
    return {
        "pid": writer.pid,
        "transaction_id": writer.transaction_id,
        "age_seconds": round(writer.age_seconds, 3),
        "state": writer.state,
        "query": writer.query,
        "application": writer.application,
        "client": writer.client,
    }
