"""Query parameters and response shapes of the read-side endpoints."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from kernel.http import MoneySchema
from kernel.status_api import RunningWriterSchema, SubscriptionStatusSchema

ORDER_STATUSES = ("pending", "confirmed", "partially_shipped", "shipped", "cancelled", "refunded")
RETURN_STATUSES = ("requested", "received", "inspected")
SKU = r"^[A-Z0-9][A-Z0-9-]{1,31}$"  # inventory's SKU_PATTERN (projections may not import it)


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


def _no_nul(value: str) -> None:
    # PostgreSQL refuses U+0000 in text: refused here as bad input, not failed there.
    if "\x00" in value:
        raise ma.ValidationError("Must not contain a NUL character.")


class ProductDetailArgsSchema(ConsistencySchema):
    country = ma.fields.String(
        validate=validate.Regexp(r"[A-Z]{2}\Z", error="Must be an ISO 3166-1 alpha-2 code."),
        metadata={"description": "Where the shopper ships to: adds each product's shelf_price"},
    )


class ProductArgsSchema(ProductDetailArgsSchema):
    """The storefront's product search: every filter optional, combined with AND."""

    q = ma.fields.String(
        validate=[validate.Length(min=1, max=100), _no_nul],
        metadata={"description": "Name or SKU contains this (case-insensitive)"},
    )
    in_stock = ma.fields.Boolean(metadata={"description": "Only products (not) available now"})
    min_price = ma.fields.Integer(
        validate=validate.Range(min=0, max=2**62),
        metadata={"description": "Lowest price, in minor units (whatever the currency)"},
    )
    max_price = ma.fields.Integer(
        validate=validate.Range(min=0, max=2**62),
        metadata={"description": "Highest price, in minor units (whatever the currency)"},
    )
    cursor = ma.fields.String(
        validate=validate.Regexp(SKU, error="Must be a `next_cursor` of this list."),
        metadata={"description": "A `next_cursor`: the page after it (products by SKU)"},
    )
    limit = ma.fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))

    @ma.validates_schema
    def price_range(self, data: dict[str, object], **_: object) -> None:
        low, high = data.get("min_price"), data.get("max_price")
        if low is not None and high is not None and low > high:  # type: ignore[operator]
            raise ma.ValidationError("must not be below `min_price`", "max_price")


class ShelfPriceSchema(ma.Schema):
    amount = ma.fields.Integer(required=True, metadata={"description": "Minor units, as shown"})
    currency = ma.fields.String(required=True)
    includes_tax = ma.fields.Boolean(
        required=True, metadata={"description": "The destination shows prices with tax"}
    )
    tax_rate_bp = ma.fields.Integer(required=True, metadata={"description": "1900 = 19 %"})
    tax = ma.fields.Nested(MoneySchema, required=True, metadata={"description": "Per unit"})


class ProductSchema(ma.Schema):
    sku = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    price = ma.fields.Nested(
        MoneySchema, required=True, metadata={"description": "Net of tax, as the catalog keeps it"}
    )
    available = ma.fields.Integer(required=True)
    in_stock = ma.fields.Boolean(required=True)
    shelf_price = ma.fields.Nested(
        ShelfPriceSchema,
        metadata={
            "description": "The price as a storefront shipping to `country` shows it (with"
            " tax there, or net); only when `country` is asked"
        },
    )


class ProductListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ProductSchema), required=True)
    next_cursor = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "Pass as `cursor` for the next page; null on the last"},
    )
    read_model = ma.fields.Nested(ReadModelSchema, required=True)


class ProductDetailSchema(ma.Schema):
    product = ma.fields.Nested(ProductSchema, required=True)
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


class PricedLineSchema(ma.Schema):
    sku = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    quantity = ma.fields.Integer(required=True)
    unit_price = ma.fields.Nested(MoneySchema, required=True)
    line_total = ma.fields.Nested(
        MoneySchema, required=True, metadata={"description": "unit_price x quantity"}
    )
    discount = ma.fields.Nested(
        MoneySchema, required=True, metadata={"description": "The line's share of all discounts"}
    )
    tax = ma.fields.Nested(
        MoneySchema, required=True, metadata={"description": "Tax on line_total - discount"}
    )
    total = ma.fields.Nested(
        MoneySchema, required=True, metadata={"description": "line_total - discount + tax"}
    )


class DiscountSchema(ma.Schema):
    source = ma.fields.String(
        required=True, metadata={"description": "`promotion:<id>` or `coupon:<CODE>`"}
    )
    description = ma.fields.String(required=True)
    amount = ma.fields.Nested(MoneySchema, required=True)


class TaxLineSchema(ma.Schema):
    country = ma.fields.String(required=True)
    rate_bp = ma.fields.Integer(
        required=True, metadata={"description": "Basis points: 1900 is 19 %"}
    )
    taxable = ma.fields.Nested(MoneySchema, required=True)
    amount = ma.fields.Nested(MoneySchema, required=True)


class OrderAddressSchema(ma.Schema):
    """An address as the order document shows it (`(erased)` once its customer is forgotten)."""

    name = ma.fields.String(required=True)
    line1 = ma.fields.String(required=True)
    line2 = ma.fields.String(required=True)
    city = ma.fields.String(required=True)
    region = ma.fields.String(required=True)
    postal_code = ma.fields.String(required=True)
    country = ma.fields.String(required=True)


class ShortageSchema(ma.Schema):
    sku = ma.fields.String(required=True)
    requested = ma.fields.Integer(required=True)
    available = ma.fields.Integer(required=True)


class ReservationStateSchema(ma.Schema):
    status = ma.fields.String(
        required=True,
        metadata={"description": "not_started, reserved, failed, released or committed"},
    )
    shortages = ma.fields.List(ma.fields.Nested(ShortageSchema))


class PaymentStateSchema(ma.Schema):
    """The payment as its last event left it; which fields are there depends on it."""

    status = ma.fields.String(
        required=True,
        metadata={
            "description": "not_started, requested, pending, succeeded, failed, abandoned,"
            " cancelling, refunding, partially_refunded or refunded"
        },
    )
    amount = ma.fields.Nested(MoneySchema)
    attempt = ma.fields.Integer()
    reference = ma.fields.String()
    reason = ma.fields.String()
    refund_id = ma.fields.String()
    refund_reference = ma.fields.String()
    refund_reason = ma.fields.String()
    refund_failure = ma.fields.String()


class CancellationSchema(ma.Schema):
    reason = ma.fields.String(required=True)
    cancelled_by = ma.fields.String(required=True)


class ItemLineSchema(ma.Schema):
    sku = ma.fields.String(required=True)
    quantity = ma.fields.Integer(required=True)


class ShipmentSchema(ma.Schema):
    shipment_id = ma.fields.String(required=True)
    lines = ma.fields.List(ma.fields.Nested(ItemLineSchema), required=True)
    tracking_number = ma.fields.String(required=True)
    at = ma.fields.String(required=True, metadata={"description": "When it was dispatched"})


class ReturnSchema(ma.Schema):
    return_id = ma.fields.String(required=True)
    lines = ma.fields.List(
        ma.fields.Nested(ItemLineSchema), required=True, metadata={"description": "Announced"}
    )
    reason = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=validate.OneOf(RETURN_STATUSES))
    accepted = ma.fields.List(
        ma.fields.Nested(ItemLineSchema),
        required=True,
        metadata={"description": "Back on the shelf and refunded (once inspected)"},
    )
    rejected = ma.fields.List(ma.fields.Nested(ItemLineSchema), required=True)
    refund = ma.fields.Nested(
        MoneySchema,
        allow_none=True,
        required=True,
        metadata={"description": "What the accepted units are refunded (null until inspected)"},
    )
    note = ma.fields.String(required=True)
    requested_at = ma.fields.String(required=True)
    received_at = ma.fields.String(allow_none=True, required=True)
    inspected_at = ma.fields.String(allow_none=True, required=True)


class RefundSchema(ma.Schema):
    refund_id = ma.fields.String(
        required=True, metadata={"description": "Empty on refunds of before partial refunds"}
    )
    amount = ma.fields.Nested(MoneySchema, required=True)
    reason = ma.fields.String(required=True)
    reference = ma.fields.String(required=True, metadata={"description": "At the provider"})
    at = ma.fields.String(required=True)


class MomentSchema(ma.Schema):
    what = ma.fields.String(required=True)
    status = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "The order's, if it changed"}
    )
    event = ma.fields.String(required=True)
    at = ma.fields.String(required=True)


class OrderDocumentSchema(ma.Schema):
    """An order as it was charged and as it stands: figures from its events, never
    recomputed. total = subtotal - discount_total + tax_total + shipping."""

    order_id = ma.fields.String(required=True)
    customer_id = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=validate.OneOf(ORDER_STATUSES))
    lines = ma.fields.List(ma.fields.Nested(PricedLineSchema), required=True)
    subtotal = ma.fields.Nested(MoneySchema, required=True)
    discounts = ma.fields.List(ma.fields.Nested(DiscountSchema), required=True)
    discount_total = ma.fields.Nested(MoneySchema, required=True)
    taxes = ma.fields.List(
        ma.fields.Nested(TaxLineSchema),
        required=True,
        metadata={"description": "By rate, the shipping's tax included"},
    )
    tax_total = ma.fields.Nested(MoneySchema, required=True)
    shipping = ma.fields.Nested(MoneySchema, required=True)
    total = ma.fields.Nested(MoneySchema, required=True)
    prices_include_tax = ma.fields.Boolean(
        required=True, metadata={"description": "The storefront showed prices with tax"}
    )
    coupon_code = ma.fields.String(allow_none=True, required=True)
    cart_id = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "The cart checked out"}
    )
    shipping_address = ma.fields.Nested(OrderAddressSchema, required=True)
    billing_address = ma.fields.Nested(OrderAddressSchema, required=True)
    item_count = ma.fields.Integer(required=True)
    placed_at = ma.fields.String(required=True)
    payment = ma.fields.Nested(PaymentStateSchema, required=True)
    reservation = ma.fields.Nested(ReservationStateSchema, required=True)
    tracking_number = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "The last shipment's"}
    )
    cancellation = ma.fields.Nested(CancellationSchema, allow_none=True, required=True)
    shipments = ma.fields.List(ma.fields.Nested(ShipmentSchema), required=True)
    returns = ma.fields.List(ma.fields.Nested(ReturnSchema), required=True)
    refunds = ma.fields.List(ma.fields.Nested(RefundSchema), required=True)
    refunded_total = ma.fields.Nested(MoneySchema, required=True)
    timeline = ma.fields.List(ma.fields.Nested(MomentSchema), required=True)


class OrderDetailSchema(ma.Schema):
    order = ma.fields.Nested(OrderDocumentSchema, required=True)
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
    refunds = ma.fields.Integer(required=True, metadata={"description": "How many refunds"})
    refunded = ma.fields.Integer(
        required=True, metadata={"description": "Refunded that day, partial refunds included"}
    )
    gross = ma.fields.Integer(
        required=True, metadata={"description": "Subtotals of the orders confirmed that day"}
    )
    discounts = ma.fields.Integer(
        required=True, metadata={"description": "Their discounts (promotions and coupons)"}
    )
    tax = ma.fields.Integer(required=True, metadata={"description": "Their tax"})
    shipping = ma.fields.Integer(required=True, metadata={"description": "Their shipping"})
    net = ma.fields.Integer(
        required=True,
        metadata={
            "description": "Revenue after discounts and refunds, without tax and shipping:"
            " gross - discounts - refunded (refunds count on the day they were made)"
        },
    )


class SalesSchema(ma.Schema):
    days = ma.fields.List(ma.fields.Nested(SalesDaySchema), required=True)
    read_model = ma.fields.Nested(ReadModelSchema, required=True)


class TopProductSchema(ma.Schema):
    sku = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    currency = ma.fields.String(required=True)
    units = ma.fields.Integer(required=True)
    revenue = ma.fields.Integer(required=True)
    returned = ma.fields.Integer(
        required=True, metadata={"description": "Units sent back and accepted at inspection"}
    )


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
