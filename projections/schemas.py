"""Query parameters and response shapes of the read-side endpoints."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from kernel.http import MoneySchema
from kernel.status_api import RunningWriterSchema, SubscriptionStatusSchema

ORDER_STATUSES = ("pending", "confirmed", "cancelled", "shipped", "refunded")


class ConsistencySchema(ma.Schema):
    consistency_token = ma.fields.String(
        validate=validate.Regexp(r"^\d{1,20}\.\d{1,20}(\.\d{1,2})?$"),
        metadata={"description": "From a command response: wait until this write is visible"},
    )


class PageArgsSchema(ConsistencySchema):
    cursor = ma.fields.Integer(validate=validate.Range(min=0))
    limit = ma.fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class AdminOrdersArgsSchema(PageArgsSchema):
    status = ma.fields.String(validate=validate.OneOf(ORDER_STATUSES))
    customer_id = ma.fields.String(validate=validate.Length(min=1, max=64))


class SalesArgsSchema(ConsistencySchema):
    from_ = ma.fields.Date(data_key="from", required=True)
    to = ma.fields.Date(required=True)

    @ma.validates_schema
    def ordered(self, data: dict[str, object], **_: object) -> None:
        start, end = data.get("from_"), data.get("to")
        if start and end and start > end:  # type: ignore[operator]
            raise ma.ValidationError("must not be before `from`", "to")
        if start and end and (end - start).days > 366:  # type: ignore[operator]
            raise ma.ValidationError("at most 366 days at a time", "to")


class TopProductsArgsSchema(ConsistencySchema):
    limit = ma.fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))


class ReadModelSchema(ma.Schema):
    name = ma.fields.String(required=True)
    lag_events = ma.fields.Integer(required=True)
    lag_seconds = ma.fields.Float(required=True)
    stale = ma.fields.Boolean(required=True)


class ProductSchema(ma.Schema):
    sku = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    price = ma.fields.Nested(MoneySchema, required=True)
    available = ma.fields.Integer(required=True)
    in_stock = ma.fields.Boolean(required=True)


class ProductListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ProductSchema), required=True)
    read_model = ma.fields.Nested(ReadModelSchema, required=True)


class OrderSummarySchema(ma.Schema):
    order_id = ma.fields.String(required=True)
    customer_id = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    total = ma.fields.Nested(MoneySchema, required=True)
    item_count = ma.fields.Integer(required=True)
    placed_at = ma.fields.String(required=True)


class OrderPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(OrderSummarySchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)
    read_model = ma.fields.Nested(ReadModelSchema, required=True)


class OrderDetailSchema(ma.Schema):
    order = ma.fields.Dict(required=True, metadata={"description": "The order document"})
    read_model = ma.fields.Nested(ReadModelSchema, required=True)


class HistoryEventSchema(ma.Schema):
    position = ma.fields.Integer(required=True)
    stream_id = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    type = ma.fields.String(required=True)
    recorded_at = ma.fields.String(required=True)
    message_id = ma.fields.String(required=True)
    correlation_id = ma.fields.String(required=True)
    causation_id = ma.fields.String(allow_none=True, required=True)
    actor = ma.fields.String(allow_none=True, required=True)


class AdminOrderDetailSchema(OrderDetailSchema):
    history = ma.fields.List(ma.fields.Nested(HistoryEventSchema), required=True)


class SalesDaySchema(ma.Schema):
    day = ma.fields.String(required=True)
    currency = ma.fields.String(required=True)
    orders = ma.fields.Integer(required=True)
    revenue = ma.fields.Integer(required=True)
    average_order_value = ma.fields.Integer(required=True)
    cancellations = ma.fields.Integer(required=True)
    refunds = ma.fields.Integer(required=True)
    refunded = ma.fields.Integer(required=True)


class SalesSchema(ma.Schema):
    days = ma.fields.List(ma.fields.Nested(SalesDaySchema), required=True)
    read_model = ma.fields.Nested(ReadModelSchema, required=True)


class TopProductSchema(ma.Schema):
    sku = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    currency = ma.fields.String(required=True)
    units = ma.fields.Integer(required=True)
    revenue = ma.fields.Integer(required=True)


class TopProductsSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(TopProductSchema), required=True)
    read_model = ma.fields.Nested(ReadModelSchema, required=True)


_REASON = (
    "Why it was built: `operator` (asked for by the admin API, the dashboard or `shop"
    " projections rebuild`) or `version 1 -> 2` (started by a worker whose code declares a"
    " newer version)"
)


class RebuildStatusSchema(SubscriptionStatusSchema):
    generation = ma.fields.Integer(required=True, metadata={"description": "The one being built"})
    version = ma.fields.Integer(
        required=True, metadata={"description": "The read model version it is built with"}
    )
    reason = ma.fields.String(required=True, metadata={"description": _REASON})
    requested_by = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={
            "description": "Who asked: the admin, as events record them (`admin:<admin_id>`),"
            " `shop CLI (user@host)`, or the worker that started it (host:pid)"
        },
    )
    started_at = ma.fields.DateTime(required=True)


class ProjectionStatusSchema(SubscriptionStatusSchema):
    name = ma.fields.String(required=True)
    store = ma.fields.String(required=True)
    mode = ma.fields.String(required=True)
    generation = ma.fields.Integer(
        required=True, metadata={"description": "The active generation: what queries read"}
    )
    version = ma.fields.Integer(
        allow_none=True,
        required=True,
        metadata={
            "description": "The read model version the active generation was built with"
            " (null: not recorded yet, the read model has not run)"
        },
    )
    reason = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={"description": _REASON + "; null for its first generation"},
    )
    requested_by = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "Who asked for that build"}
    )
    code_version = ma.fields.Integer(
        required=True,
        metadata={
            "description": "The version this API process's code declares: a newer one than"
            " `version` is rebuilt by the workers running it"
        },
    )
    rebuild = ma.fields.Nested(RebuildStatusSchema, allow_none=True, required=True)


class ReplicaStatusSchema(ma.Schema):
    name = ma.fields.String(required=True, metadata={"description": "replica N (host:port)"})
    reachable = ma.fields.Boolean(required=True)
    lag_seconds = ma.fields.Float(
        allow_none=True,
        metadata={"description": "Behind the primary (0 once it replayed all it received)"},
    )
    lag_bytes = ma.fields.Integer(
        allow_none=True, metadata={"description": "WAL received, not replayed yet"}
    )
    replay_paused = ma.fields.Boolean(allow_none=True)
    replayed_at = ma.fields.DateTime(
        allow_none=True,
        metadata={"description": "When the newest commit the replica replayed was made"},
    )
    error = ma.fields.String(allow_none=True, metadata={"description": "Why it did not answer"})


class ProjectionsSchema(ma.Schema):
    projections = ma.fields.List(ma.fields.Nested(ProjectionStatusSchema), required=True)
    held_back_by = ma.fields.List(
        ma.fields.Nested(RunningWriterSchema),
        required=True,
        metadata={
            "description": "Event-store writer transactions running for more than 5 s: every"
            " subscription waits for them to end"
        },
    )
    replicas = ma.fields.List(
        ma.fields.Nested(ReplicaStatusSchema),
        required=True,
        metadata={"description": "The streaming replicas queries read from (READ_DATABASE_URL)"},
    )


class RebuildAcceptedSchema(ma.Schema):
    name = ma.fields.String(required=True)
    generation = ma.fields.Integer(required=True)
