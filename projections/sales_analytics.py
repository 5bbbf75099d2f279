"""Sales analytics: revenue and orders per day, top products, spend per customer.

An order counts as a sale when it is confirmed (paid), on the day it was
confirmed; a confirmed order cancelled later is taken back out of its products'
and customer's figures, and its refund is counted on the day it was refunded.
"""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import Connection, text

from kernel.event_store import RecordedEvent
from orders.events import OrderCancelled, OrderConfirmed, OrderPlaced
from payments.events import PaymentRefunded
from projections.handlers import Handlers
from projections.projection import Mode, PostgresHandler, PostgresProjection

handlers: Handlers[PostgresHandler] = Handlers()


@handlers.on(OrderPlaced)
def placed(conn: Connection, gen: int, event: OrderPlaced, recorded: RecordedEvent) -> None:
    lines = [
        {
            "sku": line.sku,
            "name": line.name,
            "units": line.quantity,
            "revenue": line.line_total.amount,
        }
        for line in event.lines
    ]
    conn.execute(
        text(
            """
            INSERT INTO sales_orders (generation, order_id, customer_id, currency, total, lines)
            VALUES (:gen, :order_id, :customer_id, :currency, :total, CAST(:lines AS jsonb))
            ON CONFLICT (generation, order_id) DO NOTHING
            """
        ),
        {
            "gen": gen,
            "order_id": event.order_id,
            "customer_id": event.customer_id,
            "currency": event.total.currency,
            "total": event.total.amount,
            "lines": json.dumps(lines),
        },
    )


@handlers.on(OrderConfirmed)
def confirmed(conn: Connection, gen: int, event: OrderConfirmed, recorded: RecordedEvent) -> None:
    day = _day(recorded)
    order = conn.execute(
        text(
            "UPDATE sales_orders SET confirmed_on = :day"
            " WHERE generation = :gen AND order_id = :order_id AND confirmed_on IS NULL"
            " RETURNING customer_id, currency, total"
        ),
        {"gen": gen, "order_id": event.order_id, "day": day},
    ).first()
    if order is None:
        return
    customer_id, currency, total = order
    _bump_day(conn, gen, day, currency, orders=1, revenue=total)
    _bump_products(conn, gen, event.order_id, sign=1)
    conn.execute(
        text(
            """
            INSERT INTO sales_customers (generation, customer_id, currency, orders, total_spent)
            VALUES (:gen, :customer_id, :currency, 1, :total)
            ON CONFLICT (generation, customer_id, currency) DO UPDATE
            SET orders = sales_customers.orders + 1,
                total_spent = sales_customers.total_spent + EXCLUDED.total_spent
            """
        ),
        {"gen": gen, "customer_id": customer_id, "currency": currency, "total": total},
    )


@handlers.on(OrderCancelled)
def cancelled(conn: Connection, gen: int, event: OrderCancelled, recorded: RecordedEvent) -> None:
    order = conn.execute(
        text(
            "SELECT customer_id, currency, total, confirmed_on FROM sales_orders"
            " WHERE generation = :gen AND order_id = :order_id"
        ),
        {"gen": gen, "order_id": event.order_id},
    ).first()
    if order is None:
        return
    customer_id, currency, total, confirmed_on = order
    _bump_day(conn, gen, _day(recorded), currency, cancellations=1)
    if confirmed_on is not None:
        _bump_products(conn, gen, event.order_id, sign=-1)
        conn.execute(
            text(
                "UPDATE sales_customers SET orders = orders - 1, total_spent = total_spent - :total"
                " WHERE generation = :gen AND customer_id = :customer_id AND currency = :currency"
            ),
            {"gen": gen, "customer_id": customer_id, "currency": currency, "total": total},
        )


@handlers.on(PaymentRefunded)
def refunded(conn: Connection, gen: int, event: PaymentRefunded, recorded: RecordedEvent) -> None:
    _bump_day(
        conn, gen, _day(recorded), event.amount.currency, refunds=1, refunded=event.amount.amount
    )


def _day(recorded: RecordedEvent) -> date:
    return recorded.metadata.occurred_at.date()


def _bump_day(conn: Connection, gen: int, day: date, currency: str, **deltas: int) -> None:
    columns = ", ".join(deltas)
    values = ", ".join(f":{column}" for column in deltas)
    updates = ", ".join(f"{column} = sales_daily.{column} + EXCLUDED.{column}" for column in deltas)
    conn.execute(
        text(
            f"""
            INSERT INTO sales_daily (generation, day, currency, {columns})
            VALUES (:gen, :day, :currency, {values})
            ON CONFLICT (generation, day, currency) DO UPDATE SET {updates}
            """
        ),
        {"gen": gen, "day": day, "currency": currency, **deltas},
    )


def _bump_products(conn: Connection, gen: int, order_id: str, sign: int) -> None:
    conn.execute(
        text(
            """
            INSERT INTO sales_products (generation, sku, currency, name, units, revenue)
            SELECT :gen, line ->> 'sku', o.currency, line ->> 'name',
                   :sign * (line ->> 'units')::bigint, :sign * (line ->> 'revenue')::bigint
            FROM sales_orders o, jsonb_array_elements(o.lines) AS line
            WHERE o.generation = :gen AND o.order_id = :order_id
            ON CONFLICT (generation, sku, currency) DO UPDATE
            SET units = sales_products.units + EXCLUDED.units,
                revenue = sales_products.revenue + EXCLUDED.revenue,
                name = EXCLUDED.name
            """
        ),
        {"gen": gen, "order_id": order_id, "sign": sign},
    )


def projection(mode: Mode = "async") -> PostgresProjection:
    tables = ["sales_orders", "sales_daily", "sales_products", "sales_customers"]
    return PostgresProjection("sales_analytics", tables, handlers, mode)
