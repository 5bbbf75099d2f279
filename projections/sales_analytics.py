"""Sales analytics: revenue and orders per day, top products, spend per customer.

An order counts as a sale when it is confirmed (paid), on the day it was
confirmed; daily revenue stays what was taken that day, and so do its parts as
OrderPlaced charged them: gross (the subtotals), discounts, tax and shipping. A
refund is counted (and its amount, partial refunds included) on the day it was
refunded, so a day's net (gross - discounts - refunded: revenue after discounts and
refunds, without tax and shipping) is computed by the query from the stored sums.
A confirmed order cancelled later, or refunded in full (sent back after it shipped),
is taken back out of its products' and customer's figures, once: a cancellation and
the refund that follows it, or a refund and the cancellation the saga makes of it,
take it out together once (`sales_orders.withdrawn`). A partial refund (a return's)
takes nothing out; the units a return brought back (accepted at inspection) count
per product as `returned`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import TextClause, text

from kernel import jsonb
from kernel.event_store import RecordedEvent
from kernel.write_batch import WriteBatch
from orders.events import OrderCancelled, OrderConfirmed, OrderPlaced, ReturnInspected
from payments.events import PaymentRefunded
from projections.projection import Mode, PostgresHandlers, PostgresProjection

VERSION = 2  # 2: gross, discounts, tax and shipping per day; partial refunds; returns
"""Bump it with any change that alters what this read model stores: workers running the new
code rebuild it (docs/DESIGN.md, "Read model versions")."""

handlers: PostgresHandlers = PostgresHandlers()

# The handlers' statements go out in one pipeline per batch (see WriteBatch), so
# what depends on the stored order (was it placed, was it confirmed) is decided
# inside each statement: the order row feeds the other tables' upserts in CTEs.

_PLACE = text(
    """
    INSERT INTO sales_orders (generation, order_id, customer_id, currency, total, lines,
                              confirmed_on, withdrawn, subtotal, discount_total, tax_total,
                              shipping)
    SELECT :gen, r.order_id, r.customer_id, r.currency, r.total, r.lines, r.confirmed_on,
           r.withdrawn, r.subtotal, r.discount_total, r.tax_total, r.shipping
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS r(order_id text, customer_id text, currency text, total bigint, lines jsonb,
              confirmed_on date, withdrawn boolean, subtotal bigint, discount_total bigint,
              tax_total bigint, shipping bigint)
    ON CONFLICT (generation, order_id) DO NOTHING
    """
)
_ADD_DAILY = text(
    """
    INSERT INTO sales_daily AS d (generation, day, currency, orders, revenue, cancellations,
                                  refunds, refunded, gross, discounts, tax, shipping)
    SELECT :gen, r.day, r.currency, r.orders, r.revenue, r.cancellations, r.refunds, r.refunded,
           r.gross, r.discounts, r.tax, r.shipping
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS r(day date, currency text, orders integer, revenue bigint, cancellations integer,
              refunds integer, refunded bigint, gross bigint, discounts bigint, tax bigint,
              shipping bigint)
    ON CONFLICT (generation, day, currency) DO UPDATE
    SET orders = d.orders + EXCLUDED.orders, revenue = d.revenue + EXCLUDED.revenue,
        cancellations = d.cancellations + EXCLUDED.cancellations,
        refunds = d.refunds + EXCLUDED.refunds, refunded = d.refunded + EXCLUDED.refunded,
        gross = d.gross + EXCLUDED.gross, discounts = d.discounts + EXCLUDED.discounts,
        tax = d.tax + EXCLUDED.tax, shipping = d.shipping + EXCLUDED.shipping
    """
)
_ADD_PRODUCTS = text(
    """
    INSERT INTO sales_products AS p (generation, sku, currency, name, units, revenue)
    SELECT :gen, r.sku, r.currency, r.name, r.units, r.revenue
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS r(sku text, currency text, name text, units bigint, revenue bigint)
    ON CONFLICT (generation, sku, currency) DO UPDATE
    SET units = p.units + EXCLUDED.units, revenue = p.revenue + EXCLUDED.revenue,
        name = EXCLUDED.name
    """
)
_ADD_CUSTOMERS = text(
    """
    INSERT INTO sales_customers AS c (generation, customer_id, currency, orders, total_spent)
    SELECT :gen, r.customer_id, r.currency, r.orders, r.total_spent
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS r(customer_id text, currency text, orders integer, total_spent bigint)
    ON CONFLICT (generation, customer_id, currency) DO UPDATE
    SET orders = c.orders + EXCLUDED.orders, total_spent = c.total_spent + EXCLUDED.total_spent
    """
)

_DAILY = ("orders", "revenue", "cancellations", "refunds", "refunded", "gross", "discounts",
          "tax", "shipping")  # fmt: skip


class Sales:
    """A batch's sales of the orders it places, counted in memory and written at flush
    in one statement per table, before the batch's other statements.

    An order placed in the batch is known here (placed, confirmed or not, taken out or
    not), so its confirmation, cancellation and refund are decided here as the
    statements below decide them against the stored row, and only their sums are
    written: a rebuild writes a few rows per batch instead of a statement per event.
    The events of orders placed in an earlier batch go out as those statements, after
    these; what they add to the shared rows (days, products, customers) are sums, so
    the order does not change the result, and each touches only its own order's row.
    """

    def __init__(self) -> None:
        self.orders: dict[int, dict[str, dict[str, Any]]] = {}
        self.daily: dict[int, dict[tuple[str, str], dict[str, int]]] = {}
        self.products: dict[int, dict[tuple[str, str], dict[str, Any]]] = {}
        self.customers: dict[int, dict[tuple[str, str], dict[str, Any]]] = {}

    def order(self, gen: int, order_id: str) -> dict[str, Any] | None:
        """The row of an order placed in this batch, None for any other."""
        return self.orders.get(gen, {}).get(order_id)

    def place(self, gen: int, row: dict[str, Any]) -> None:
        row |= {"confirmed_on": None, "withdrawn": False}
        self.orders.setdefault(gen, {}).setdefault(row["order_id"], row)

    def confirm(self, gen: int, order: dict[str, Any], day: str) -> None:
        if order["confirmed_on"] is not None:  # counted once
            return
        order["confirmed_on"] = day
        self._day(
            gen,
            day,
            order["currency"],
            orders=1,
            revenue=order["total"],
            gross=order["subtotal"],
            discounts=order["discount_total"],
            tax=order["tax_total"],
            shipping=order["shipping"],
        )
        self._sale(gen, order, 1)

    def cancel(self, gen: int, order: dict[str, Any], day: str) -> None:
        self._day(gen, day, order["currency"], cancellations=1)
        if order["confirmed_on"] is not None and not order["withdrawn"]:
            order["withdrawn"] = True
            self._sale(gen, order, -1)

    def refund(self, gen: int, order: dict[str, Any], day: str, refund: PaymentRefunded) -> None:
        self._day(gen, day, refund.amount.currency, refunds=1, refunded=refund.amount.amount)
        if not refund.fully_refunded:  # a return's: the sale stands
            return
        if order["confirmed_on"] is not None and not order["withdrawn"]:
            order["withdrawn"] = True
            self._sale(gen, order, -1)

    def _day(self, gen: int, day: str, currency: str, **counts: int) -> None:
        days = self.daily.setdefault(gen, {})
        figures = days.get((day, currency))
        if figures is None:
            figures = days[(day, currency)] = dict.fromkeys(_DAILY, 0)
        for name, count in counts.items():
            figures[name] += count

    def _sale(self, gen: int, order: dict[str, Any], sign: int) -> None:
        currency = order["currency"]
        products = self.products.setdefault(gen, {})
        for line in order["lines"]:
            product = products.get((line["sku"], currency))
            if product is None:
                product = products[(line["sku"], currency)] = {"units": 0, "revenue": 0}
            product["name"] = line["name"]
            product["units"] += sign * line["units"]
            product["revenue"] += sign * line["revenue"]
        customers = self.customers.setdefault(gen, {})
        customer = customers.get((order["customer_id"], currency))
        if customer is None:
            customer = customers[(order["customer_id"], currency)] = {"orders": 0, "spent": 0}
        customer["orders"] += sign
        customer["spent"] += sign * order["total"]

    def statements(self) -> Iterable[tuple[TextClause, Mapping[str, Any]]]:
        for gen, orders in self.orders.items():
            yield _PLACE, {"gen": gen, "rows": jsonb.dumps(list(orders.values()))}
        for gen, days in self.daily.items():
            rows = [{"day": d, "currency": c} | f for (d, c), f in days.items()]
            yield _ADD_DAILY, {"gen": gen, "rows": jsonb.dumps(rows)}
        for gen, products in self.products.items():
            rows = [{"sku": s, "currency": c} | p for (s, c), p in products.items()]
            yield _ADD_PRODUCTS, {"gen": gen, "rows": jsonb.dumps(rows)}
        for gen, customers in self.customers.items():
            rows = [
                {"customer_id": k, "currency": c, "orders": f["orders"], "total_spent": f["spent"]}
                for (k, c), f in customers.items()
            ]
            yield _ADD_CUSTOMERS, {"gen": gen, "rows": jsonb.dumps(rows)}


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
        RETURNING customer_id, currency, total, lines, subtotal, discount_total, tax_total,
                  shipping
    ), daily AS (
        INSERT INTO sales_daily (generation, day, currency, orders, revenue, gross, discounts,
                                 tax, shipping)
        SELECT :gen, :day, currency, 1, total, subtotal, discount_total, tax_total, shipping
        FROM orders
        ON CONFLICT (generation, day, currency) DO UPDATE
        SET orders = sales_daily.orders + 1, revenue = sales_daily.revenue + EXCLUDED.revenue,
            gross = sales_daily.gross + EXCLUDED.gross,
            discounts = sales_daily.discounts + EXCLUDED.discounts,
            tax = sales_daily.tax + EXCLUDED.tax,
            shipping = sales_daily.shipping + EXCLUDED.shipping
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
_REFUND_WITHDRAWS = _WITHDRAWN.format(taken_out="= false AND CAST(:full AS boolean)")
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

# A refund counts on its day; a full refund takes a confirmed order's sale back out,
# unless its cancellation did already.
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


# The units a return brought back, on their products' rows (named as the order named
# them): counted once the order was confirmed, as its sale was.
_RETURNED = text(
    """
    INSERT INTO sales_products AS p (generation, sku, currency, name, units, revenue, returned)
    SELECT :gen, r.sku, o.currency,
           coalesce((SELECT line ->> 'name' FROM jsonb_array_elements(o.lines) AS line
                     WHERE line ->> 'sku' = r.sku LIMIT 1), r.sku),
           0, 0, r.quantity
    FROM sales_orders AS o
    CROSS JOIN jsonb_to_recordset(CAST(:accepted AS jsonb)) AS r(sku text, quantity bigint)
    WHERE o.generation = :gen AND o.order_id = :order_id AND o.confirmed_on IS NOT NULL
    ON CONFLICT (generation, sku, currency) DO UPDATE
    SET returned = p.returned + EXCLUDED.returned
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
        "subtotal": event.subtotal.amount,
        "discount_total": event.discount_total.amount,
        "tax_total": event.tax_total.amount,
        "shipping": event.shipping.amount,
    }
    writes.collector(Sales).place(gen, row)


@handlers.on(OrderConfirmed)
def confirmed(event: OrderConfirmed, writes: WriteBatch, gen: int, recorded: RecordedEvent) -> None:
    sales = writes.collector(Sales)
    order = sales.order(gen, event.order_id)
    if order is not None:
        sales.confirm(gen, order, _day(recorded).isoformat())
        return
    writes.execute(
        _CONFIRM, {"gen": gen, "order_id": event.order_id, "day": _day(recorded), "sign": 1}
    )


@handlers.on(OrderCancelled)
def cancelled(event: OrderCancelled, writes: WriteBatch, gen: int, recorded: RecordedEvent) -> None:
    sales = writes.collector(Sales)
    order = sales.order(gen, event.order_id)
    if order is not None:
        sales.cancel(gen, order, _day(recorded).isoformat())
        return
    writes.execute(
        _CANCEL, {"gen": gen, "order_id": event.order_id, "day": _day(recorded), "sign": -1}
    )


@handlers.on(PaymentRefunded)
def refunded(event: PaymentRefunded, writes: WriteBatch, gen: int, recorded: RecordedEvent) -> None:
    sales = writes.collector(Sales)
    order = sales.order(gen, event.order_id)
    if order is not None:
        sales.refund(gen, order, _day(recorded).isoformat(), event)
        return
    writes.execute(
        _REFUND,
        {
            "gen": gen,
            "order_id": event.order_id,
            "day": _day(recorded),
            "currency": event.amount.currency,
            "amount": event.amount.amount,
            "full": event.fully_refunded,
            "sign": -1,
        },
    )


@handlers.on(ReturnInspected)
def return_inspected(
    event: ReturnInspected, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    if not event.accepted:
        return
    # After the batch's collected rows (see WriteBatch): an order placed in this batch
    # has its row by then.
    units: dict[str, int] = {}
    for line in event.accepted:  # one row per SKU: an upsert may not touch a row twice
        units[line.sku] = units.get(line.sku, 0) + line.quantity
    accepted = [{"sku": sku, "quantity": quantity} for sku, quantity in units.items()]
    params = {"gen": gen, "order_id": event.order_id, "accepted": jsonb.dumps(accepted)}
    writes.execute(_RETURNED, params)


def _day(recorded: RecordedEvent) -> date:
    return recorded.metadata.occurred_at.date()


def projection(mode: Mode = "async") -> PostgresProjection:
    tables = ["sales_orders", "sales_daily", "sales_products", "sales_customers"]
    return PostgresProjection("sales_analytics", tables, handlers, mode, version=VERSION)
