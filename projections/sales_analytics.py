"""Sales analytics: revenue and orders per day, top products, spend per customer.

An order counts as a sale when it is confirmed (paid), on the day it was
confirmed; daily revenue stays what was taken that day. A refund is counted (and
its amount) on the day it was refunded, so a day's net is revenue minus refunded.
A confirmed order cancelled later, or refunded (sent back after it shipped), is
taken back out of its products' and customer's figures, once: a cancellation and
the refund that follows it, or a refund and the cancellation the saga makes of it,
take it out together once (`sales_orders.withdrawn`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import TextClause, text

from kernel import jsonb
from kernel.event_store import RecordedEvent
from kernel.write_batch import WriteBatch
from orders.events import OrderCancelled, OrderConfirmed, OrderPlaced
from payments.events import PaymentRefunded
from projections.projection import Mode, PostgresHandlers, PostgresProjection

VERSION = 1
"""Bump it with any change that alters what this read model stores: workers running the new
code rebuild it (docs/DESIGN.md, "Read model versions")."""

handlers: PostgresHandlers = PostgresHandlers()

# The handlers' statements go out in one pipeline per batch (see WriteBatch), so
# what depends on the stored order (was it placed, was it confirmed) is decided
# inside each statement: the order row feeds the other tables' upserts in CTEs.

_PLACE = text(
    """
    INSERT INTO sales_orders (generation, order_id, customer_id, currency, total, lines,
                              withdrawn)
    SELECT :gen, r.order_id, r.customer_id, r.currency, r.total, r.lines, false
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS r(order_id text, customer_id text, currency text, total bigint, lines jsonb)
    ON CONFLICT (generation, order_id) DO NOTHING
    """
)


class PlacedOrders:
    """A batch's new orders, inserted in one statement before the batch's other
    statements: an order's OrderPlaced comes before anything else about it, and
    those statements touch only their own order's rows, so the result is the same."""

    def __init__(self) -> None:
        self.rows: dict[int, list[dict[str, Any]]] = {}

    def add(self, gen: int, row: dict[str, Any]) -> None:
        self.rows.setdefault(gen, []).append(row)

    def statements(self) -> Iterable[tuple[TextClause, Mapping[str, Any]]]:
        for gen, rows in self.rows.items():
            yield _PLACE, {"gen": gen, "rows": jsonb.dumps(rows)}


# `order_products` and `customer` take an `orders` CTE of the order and a :sign.
_ORDER_PRODUCTS = """
    INSERT INTO sales_products (generation, sku, currency, name, units, revenue)
    SELECT :gen, line ->> 'sku', o.currency, line ->> 'name',
           :sign * (line ->> 'units')::bigint, :sign * (line ->> 'revenue')::bigint
    FROM orders o, jsonb_array_elements(o.lines) AS line
    ON CONFLICT (generation, sku, currency) DO UPDATE
    SET units = sales_products.units + EXCLUDED.units,
        revenue = sales_products.revenue + EXCLUDED.revenue,
        name = EXCLUDED.name
"""

# Counted once: only the first OrderConfirmed of a placed order sets confirmed_on.
_CONFIRM = text(
    f"""
    WITH orders AS (
        UPDATE sales_orders SET confirmed_on = :day
        WHERE generation = :gen AND order_id = :order_id AND confirmed_on IS NULL
        RETURNING customer_id, currency, total, lines
    ), daily AS (
        INSERT INTO sales_daily (generation, day, currency, orders, revenue)
        SELECT :gen, :day, currency, 1, total FROM orders
        ON CONFLICT (generation, day, currency) DO UPDATE
        SET orders = sales_daily.orders + 1, revenue = sales_daily.revenue + EXCLUDED.revenue
    ), products AS ({_ORDER_PRODUCTS})
    INSERT INTO sales_customers (generation, customer_id, currency, orders, total_spent)
    SELECT :gen, customer_id, currency, 1, total FROM orders
    ON CONFLICT (generation, customer_id, currency) DO UPDATE
    SET orders = sales_customers.orders + 1,
        total_spent = sales_customers.total_spent + EXCLUDED.total_spent
    """
)

# Taking a confirmed order's sale back out, once. `withdrawn` is NULL on rows from
# before migration 0009, which keep the old rule: a cancellation takes the sale out,
# a refund does not.
_WITHDRAWN = """
    UPDATE sales_orders SET withdrawn = true
    WHERE generation = :gen AND order_id = :order_id AND confirmed_on IS NOT NULL
      AND withdrawn {taken_out}
    RETURNING customer_id, currency, total, lines
"""
_CANCEL_WITHDRAWS = _WITHDRAWN.format(taken_out="IS NOT TRUE")
_REFUND_WITHDRAWS = _WITHDRAWN.format(taken_out="= false")
_TAKE_BACK = f"""
    products AS ({_ORDER_PRODUCTS})
    UPDATE sales_customers c
    SET orders = c.orders - 1, total_spent = c.total_spent - o.total
    FROM orders o
    WHERE c.generation = :gen AND c.customer_id = o.customer_id AND c.currency = o.currency
"""

# A cancellation counts on its day; a confirmed order's sale is taken back out.
_CANCEL = text(
    f"""
    WITH daily AS (
        INSERT INTO sales_daily (generation, day, currency, cancellations)
        SELECT :gen, :day, currency, 1 FROM sales_orders
        WHERE generation = :gen AND order_id = :order_id
        ON CONFLICT (generation, day, currency) DO UPDATE
        SET cancellations = sales_daily.cancellations + 1
    ), orders AS ({_CANCEL_WITHDRAWS}),
    {_TAKE_BACK}
    """
)

# A refund counts on its day; a confirmed order's sale is taken back out, unless its
# cancellation did already.
_REFUND = text(
    f"""
    WITH daily AS (
        INSERT INTO sales_daily (generation, day, currency, refunds, refunded)
        VALUES (:gen, :day, :currency, 1, :amount)
        ON CONFLICT (generation, day, currency) DO UPDATE
        SET refunds = sales_daily.refunds + 1,
            refunded = sales_daily.refunded + EXCLUDED.refunded
    ), orders AS ({_REFUND_WITHDRAWS}),
    {_TAKE_BACK}
    """
)


@handlers.on(OrderPlaced)
def placed(event: OrderPlaced, writes: WriteBatch, gen: int, recorded: RecordedEvent) -> None:
    lines = [
        {
            "sku": line.sku,
            "name": line.name,
            "units": line.quantity,
            "revenue": line.line_total.amount,
        }
        for line in event.lines
    ]
    row = {
        "order_id": event.order_id,
        "customer_id": event.customer_id,
        "currency": event.total.currency,
        "total": event.total.amount,
        "lines": lines,
    }
    writes.collector(PlacedOrders).add(gen, row)


@handlers.on(OrderConfirmed)
def confirmed(event: OrderConfirmed, writes: WriteBatch, gen: int, recorded: RecordedEvent) -> None:
    writes.execute(
        _CONFIRM, {"gen": gen, "order_id": event.order_id, "day": _day(recorded), "sign": 1}
    )


@handlers.on(OrderCancelled)
def cancelled(event: OrderCancelled, writes: WriteBatch, gen: int, recorded: RecordedEvent) -> None:
    writes.execute(
        _CANCEL, {"gen": gen, "order_id": event.order_id, "day": _day(recorded), "sign": -1}
    )


@handlers.on(PaymentRefunded)
def refunded(event: PaymentRefunded, writes: WriteBatch, gen: int, recorded: RecordedEvent) -> None:
    writes.execute(
        _REFUND,
        {
            "gen": gen,
            "order_id": event.order_id,
            "day": _day(recorded),
            "currency": event.amount.currency,
            "amount": event.amount.amount,
            "sign": -1,
        },
    )


def _day(recorded: RecordedEvent) -> date:
    return recorded.metadata.occurred_at.date()


def projection(mode: Mode = "async") -> PostgresProjection:
    tables = ["sales_orders", "sales_daily", "sales_products", "sales_customers"]
    return PostgresProjection("sales_analytics", tables, handlers, mode, version=VERSION)
