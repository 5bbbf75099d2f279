"""Query objects: each reads one read model (or, for an order's history, the log through
the event store) and returns plain data for one screen."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from redis import Redis
from sqlalchemy import Connection, Engine, text

from kernel.event_store import EventStore
from kernel.messages import utc_now
from kernel.money import round_minor
from kernel.personal_data import lookup_digest, opened_envelope
from orders.events import CustomerRegistered, OrderPlaced
from projections import carts
from projections.order_list import Keys, prefix

MAX_PAGE = 100
SUMMARY_FIELDS = ("order_id", "customer_id", "status", "total", "currency", "item_count",
                  "placed_at", "seq")  # fmt: skip

Bind = Engine | Connection
"""Where a query reads: the request's connection, or an engine to check one out from."""


@contextmanager
def _connected(bind: Bind) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None  # for the page of older orders, if any may follow
    newer_cursor: str | None = None  # for the page of newer orders (see OrderListing)


@dataclass(frozen=True, slots=True)
class Walked:
    items: list[dict[str, Any]]  # nearest the bound first
    more_from: int | None  # the bound to walk on from, when more ids may follow


class StockLevels:
    """Every product with its price and stock: on hand, reserved and available (operators)."""

    def __init__(self, bind: Bind) -> None:
        self.bind = bind

    def __call__(self, generation: int) -> list[dict[str, Any]]:
        with _connected(self.bind) as conn:
            rows = conn.execute(
                text(
                    "SELECT sku, name, price_amount, currency, on_hand, available"
                    " FROM catalog_products WHERE generation = :g ORDER BY sku"
                ),
                {"g": generation},
            ).mappings()
            return [
                {
                    "sku": row["sku"],
                    "name": row["name"],
                    "price": {"amount": row["price_amount"], "currency": row["currency"]},
                    "on_hand": row["on_hand"],
                    "reserved": row["on_hand"] - row["available"],
                    "available": row["available"],
                }
                for row in rows
            ]


@dataclass(frozen=True, slots=True)
class ProductFilter:
    """What the storefront's product search asks for; None: any."""

    q: str | None = None  # name or SKU contains it, case-insensitive
    in_stock: bool | None = None
    min_price: int | None = None  # minor units, whatever the currency
    max_price: int | None = None


class ProductList:
    """The storefront's product list: what is for sale, not how much is on the shelf.
    By SKU, in keyset pages: `cursor` is the last SKU of the page before.

    Only the filters given become conditions, so each search is planned for what it
    asks (a generic plan with `:x IS NULL OR ...` could not use the trigram indexes of
    migration 0015 for `q`)."""

    def __init__(self, bind: Bind) -> None:
        self.bind = bind

    def __call__(
        self,
        generation: int,
        wanted: ProductFilter = ProductFilter(),
        *,
        cursor: str | None = None,
        limit: int = MAX_PAGE,
    ) -> Page:
        limit = max(1, min(limit, MAX_PAGE))
        conditions = ["generation = :g"]
        params: dict[str, Any] = {"g": generation, "limit": limit + 1}
        if wanted.q is not None:
            conditions.append("(name ILIKE :pattern OR sku ILIKE :pattern)")
            params["pattern"] = f"%{_like_escaped(wanted.q)}%"
        if wanted.in_stock is not None:
            conditions.append("available > 0" if wanted.in_stock else "available <= 0")
        if wanted.min_price is not None:
            conditions.append("price_amount >= :min_price")
            params["min_price"] = wanted.min_price
        if wanted.max_price is not None:
            conditions.append("price_amount <= :max_price")
            params["max_price"] = wanted.max_price
        if cursor is not None:
            conditions.append("sku > :cursor")
            params["cursor"] = cursor
        statement = text(
            "SELECT sku, name, price_amount, currency, available FROM catalog_products"
            f" WHERE {' AND '.join(conditions)} ORDER BY sku LIMIT :limit"
        )
        with _connected(self.bind) as conn:
            rows = conn.execute(statement, params).mappings().all()
        items = [_product(row) for row in rows[:limit]]
        more = len(rows) > limit  # one row past the page: another page follows
        return Page(items, items[-1]["sku"] if more else None)

    def one(self, generation: int, sku: str) -> dict[str, Any] | None:
        """One product, if the catalog lists it."""
        with _connected(self.bind) as conn:
            row = (
                conn.execute(
                    text(
                        "SELECT sku, name, price_amount, currency, available"
                        " FROM catalog_products WHERE generation = :g AND sku = :sku"
                    ),
                    {"g": generation, "sku": sku},
                )
                .mappings()
                .first()
            )
        return None if row is None else _product(row)


def _product(row: Any) -> dict[str, Any]:
    return {
        "sku": row["sku"],
        "name": row["name"],
        "price": {"amount": row["price_amount"], "currency": row["currency"]},
        "available": row["available"],
        "in_stock": row["available"] > 0,
    }


def _like_escaped(value: str) -> str:
    """`value` matched literally by LIKE (backslash is its default escape)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class OrderListing:
    """Newest first, in cursor pages: `cursor` asks for the page just older than it (the
    score of the last order on the page before), `after` for the page just newer (the
    score of the first order on the page after, to page back). `next_cursor` leads on to
    older orders, `newer_cursor` back to newer ones, each when there are any."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def __call__(
        self,
        generation: int,
        *,
        customer_id: str | None = None,
        status: str | None = None,
        cursor: int | None = None,
        after: int | None = None,
        limit: int = 20,
    ) -> Page:
        limit = max(1, min(limit, MAX_PAGE))
        walk = partial(self.walk, generation, customer_id=customer_id, status=status)
        if after is None:
            found = walk(cursor, limit=limit)
            items, next_cursor, newer_cursor = found.items, found.more_from, None
            if cursor is not None and items and walk(items[0]["seq"], limit=1, newer=True).items:
                newer_cursor = items[0]["seq"]
        else:
            found = walk(after, limit=limit, newer=True)
            items, next_cursor, newer_cursor = found.items[::-1], None, found.more_from
            if items and walk(items[-1]["seq"], limit=1).items:
                next_cursor = items[-1]["seq"]
        return Page(items, _cursor(next_cursor), _cursor(newer_cursor))

    def walk(
        self,
        generation: int,
        bound: int | None,
        *,
        customer_id: str | None = None,
        status: str | None = None,
        limit: int = 20,
        newer: bool = False,
    ) -> Walked:
        """Up to `limit` orders past `bound` (exclusive; None: from the newest), older
        ones or, with `newer`, newer ones, nearest the bound first."""
        keys = Keys(prefix(generation))
        if customer_id:
            source = keys.customer(customer_id)
        elif status:
            source = keys.status(status)
        else:
            source = keys.everyone()
        edge = f"({bound}" if bound is not None else ("-inf" if newer else "+inf")
        items: list[dict[str, Any]] = []
        while True:
            need = limit - len(items)
            # One id more than the page needs: whether it exists tells if a next page does.
            found: list[Any] = (
                self.redis.zrangebyscore(
                    source, edge, "+inf", start=0, num=need + 1, withscores=True
                )
                if newer
                else self.redis.zrevrangebyscore(
                    source, edge, "-inf", start=0, num=need + 1, withscores=True
                )
            )
            ids = [order_id for order_id, _score in found[:need]]
            for (_id, score), summary in zip(found, self._summaries(keys, ids), strict=False):
                edge = f"({int(score)}"  # past every id looked at, even one without a hash
                if summary is None or (status and summary["status"] != status):
                    continue
                items.append(summary)
            if len(found) <= need:
                return Walked(items, None)
            if len(items) == limit:
                return Walked(items, int(edge[1:]))

    def one(self, generation: int, order_id: str) -> dict[str, Any] | None:
        """One order's summary, if the list holds it."""
        (found,) = self._summaries(Keys(prefix(generation)), [order_id])
        return found

    def _summaries(self, keys: Keys, ids: list[Any]) -> list[dict[str, Any] | None]:
        """Each order's summary (None where its hash is missing), in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for order_id in ids:
                pipe.hmget(keys.order(_text(order_id)), SUMMARY_FIELDS)
            return [
                None if all(value is None for value in raw) else _summary(raw)
                for raw in pipe.execute()
            ]


class OrderDetail:
    """One order's document, its shipping and billing addresses opened with the
    customer's key (read in the same statement): erased once the customer is forgotten."""

    def __init__(self, bind: Bind) -> None:
        self.bind = bind

    def __call__(self, generation: int, order_id: str) -> dict[str, Any] | None:
        with _connected(self.bind) as conn:
            row = conn.execute(_ORDER_DETAIL, {"g": generation, "id": order_id}).first()
        if row is None:
            return None
        document: dict[str, Any] = row[0]
        opened = opened_envelope(OrderPlaced, document.pop("personal", None), row[1])
        # An order placed before billing addresses (OrderPlaced v2) sealed only where it
        # shipped, and was billed there; its address had no second line nor region.
        shipping = _ADDRESS_DEFAULTS | opened["shipping_address"]
        billing = _ADDRESS_DEFAULTS | opened.get("billing_address", shipping)
        return document | {"shipping_address": shipping, "billing_address": billing}


_ADDRESS_DEFAULTS = {"line2": "", "region": ""}


_ORDER_DETAIL = text(
    """
    SELECT d.document, k.key FROM order_details AS d
    LEFT JOIN personal_data_keys AS k ON k.subject_id = d.customer_id
    WHERE d.generation = :g AND d.order_id = :id
    """
)


class OrderHistory:
    """Every event about one order, in log order, with its causal links (from the log)."""

    def __init__(self, store: EventStore, bind: Bind) -> None:
        self.store = store
        self.bind = bind

    def __call__(self, order_id: str) -> list[dict[str, Any]]:
        with _connected(self.bind) as conn:
            return [
                {
                    "position": event.position,
                    "stream_id": event.stream_id,
                    "version": event.version,
                    "type": event.type,
                    "recorded_at": event.recorded_at.isoformat(),
                    "message_id": event.metadata.message_id,
                    "correlation_id": event.metadata.correlation_id,
                    "causation_id": event.metadata.causation_id,
                    "actor": event.metadata.actor,
                }
                for event in self.store.about(conn, order_id)
            ]


class CustomerDirectory:
    """Who the customers are (the customer directory): by id, for the orders on a screen,
    and by email, to find a customer's orders."""

    def __init__(self, bind: Bind) -> None:
        self.bind = bind

    def named(self, generation: int, customer_ids: Collection[str]) -> dict[str, dict[str, str]]:
        """Each of the customers found: {customer_id: {"name", "email"}}, opened with their
        keys (read in the same statement), erased for a forgotten customer."""
        if not customer_ids:
            return {}
        with _connected(self.bind) as conn:
            rows = conn.execute(_NAMED, {"g": generation, "ids": sorted(set(customer_ids))}).all()
        named: dict[str, dict[str, str]] = {}
        for customer_id, sealed, key in rows:
            opened = opened_envelope(CustomerRegistered, sealed, key)
            named[customer_id] = {"name": opened["name"], "email": opened["email"]}
        return named

    def with_email(self, generation: int, email: str) -> str | None:
        """The id of the customer registered with `email` (case and surrounding spaces
        aside, as registration stores it), if any: found by its digest."""
        with _connected(self.bind) as conn:
            found: str | None = conn.execute(
                text(
                    "SELECT customer_id FROM customer_directory"
                    " WHERE generation = :g AND email_digest = :digest"
                ),
                {"g": generation, "digest": lookup_digest(email.strip().lower())},
            ).scalar()
        return found


_NAMED = text(
    """
    SELECT c.customer_id, c.personal, k.key FROM customer_directory AS c
    LEFT JOIN personal_data_keys AS k ON k.subject_id = c.customer_id
    WHERE c.generation = :g AND c.customer_id = ANY(:ids)
    """
)


class SalesByDay:
    def __init__(self, bind: Bind) -> None:
        self.bind = bind

    def __call__(self, generation: int, start: date, end: date) -> list[dict[str, Any]]:
        with _connected(self.bind) as conn:
            rows = conn.execute(
                text(
                    """
                    SELECT day, currency, orders, revenue, cancellations, refunds, refunded,
                           gross, discounts, tax, shipping
                    FROM sales_daily WHERE generation = :g AND day BETWEEN :start AND :end
                    ORDER BY day, currency
                    """
                ),
                {"g": generation, "start": start, "end": end},
            ).mappings()
            return [
                {
                    "day": row["day"].isoformat(),
                    "currency": row["currency"],
                    "orders": row["orders"],
                    "revenue": row["revenue"],
                    "average_order_value": row["revenue"] // row["orders"] if row["orders"] else 0,
                    "cancellations": row["cancellations"],
                    "refunds": row["refunds"],
                    "refunded": row["refunded"],
                    "gross": row["gross"],
                    "discounts": row["discounts"],
                    "tax": row["tax"],
                    "shipping": row["shipping"],
                    # Revenue after discounts and refunds, without tax and shipping.
                    "net": row["gross"] - row["discounts"] - row["refunded"],
                }
                for row in rows
            ]


class TopProducts:
    def __init__(self, bind: Bind) -> None:
        self.bind = bind

    def __call__(self, generation: int, limit: int = 10) -> list[dict[str, Any]]:
        with _connected(self.bind) as conn:
            rows = conn.execute(
                text(
                    """
                    SELECT sku, name, currency, units, revenue, returned FROM sales_products
                    WHERE generation = :g AND units > 0
                    ORDER BY revenue DESC, units DESC, sku LIMIT :limit
                    """
                ),
                {"g": generation, "limit": limit},
            ).mappings()
            return [dict(row) for row in rows]


def _summary(raw: list[Any]) -> dict[str, Any]:
    """An order's summary from its hash's SUMMARY_FIELDS, in that order."""
    order_id, customer_id, status, total, currency, item_count, placed_at, seq = raw
    return {
        "order_id": _text(order_id),
        "customer_id": _text(customer_id),
        "status": _text(status),
        "total": {"amount": int(total), "currency": _text(currency)},
        "item_count": int(item_count),
        "placed_at": _text(placed_at),
        "seq": int(seq),
    }


def _cursor(score: int | None) -> str | None:
    return None if score is None else str(score)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# The active catalog generation's listing of each wanted SKU (none for a SKU it lacks).
_CART_LISTINGS = text(
    """
    SELECT sku, name, price_amount, currency, available FROM catalog_products
    WHERE sku = ANY(CAST(:skus AS text[])) AND generation = coalesce(
        (SELECT active FROM projection_generations WHERE name = 'catalog'), 1)
    """
)

TaxDisplay = Callable[[Connection, str], "tuple[int, bool] | None"]
"""The pricing context's tax for a destination country, read on the query's connection:
its rate in basis points and whether its storefront shows prices with tax; None when the
country is untaxed."""


def shelf_price(price: dict[str, Any], tax: tuple[int, bool] | None) -> dict[str, Any]:
    """A catalog (net) price as a storefront in the destination shows it: with its tax
    where prices are shown with tax, net otherwise; the tax rounded as the checkout rounds
    (kernel.money). A display figure: an order's tax is computed once on the order, after
    its discounts."""
    rate, inclusive = tax or (0, False)
    currency = price["currency"]
    tax_amount = round_minor(currency, price["amount"] * rate, 10_000)
    shown = price["amount"] + (tax_amount if inclusive else 0)
    return {
        "amount": shown,
        "currency": currency,
        "includes_tax": inclusive,
        "tax_rate_bp": rate,
        "tax": {"amount": tax_amount, "currency": currency},
    }


QuoteCart = Callable[[Connection, list[tuple[str, int]], str | None, str], dict[str, Any] | None]
"""The pricing context's quote, read on the query's connection, for a cart's lines (SKU,
quantity), its coupon and where it ships to (a country, "" if not known yet): discounts,
tax, shipping and the total, as a JSON-ready dict; None when it cannot quote (a product
no longer sold)."""


class CartView:
    """A cart as its shopper sees it now: each line at today's price and availability
    (from the catalog read model), beside the price it was added at, with a note where they
    differ or stock falls short; the subtotal at today's prices; and, given `quote`, the
    pricing context's quote (None: `quote` stays null)."""

    def __init__(
        self, redis: Redis, bind: Bind, ttl: timedelta, quote: QuoteCart | None = None
    ) -> None:
        self.redis = redis
        self.bind = bind
        self.ttl = ttl
        self.quote = quote

    def stored(self, generation: int, cart_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(carts.cart_key(generation, cart_id))
        return None if raw is None else dict(json.loads(raw))

    def __call__(
        self, document: dict[str, Any], *, destination: str = "", now: datetime | None = None
    ) -> dict[str, Any]:
        updated = document["updated_at"]
        expired = (
            updated is not None and (now or utc_now()) - datetime.fromisoformat(updated) > self.ttl
        )
        lines = [] if expired else document["lines"]
        coupon = None if expired else document["coupon_code"]
        quote = None
        with _connected(self.bind) as conn:
            rows = conn.execute(_CART_LISTINGS, {"skus": [line["sku"] for line in lines]})
            listed = {row.sku: row for row in rows}
            shown = [_cart_line(line, listed.get(line["sku"])) for line in lines]
            wanted = [(line["sku"], line["quantity"]) for line in shown if line["unit_price"]]
            if self.quote is not None and wanted:
                quote = self.quote(conn, wanted, coupon, destination)
        currencies = {line["unit_price"]["currency"] for line in shown if line["unit_price"]}
        subtotal = None
        if len(currencies) == 1:
            amount = sum(line["line_total"]["amount"] for line in shown if line["line_total"])
            subtotal = {"amount": amount, "currency": currencies.pop()}
        return {
            "cart_id": document["cart_id"],
            "lines": shown,
            "coupon_code": coupon,
            "item_count": sum(line["quantity"] for line in shown),
            "subtotal": subtotal,
            "quote": quote,
            "expired": expired,
            "last_order_id": document["last_order_id"],
            "updated_at": updated,
        }


def _cart_line(line: dict[str, Any], listing: Any) -> dict[str, Any]:
    added = line["unit_price"]
    wanted = line["quantity"]
    if listing is None:
        return {
            **line, "unit_price": None, "unit_price_when_added": added,
            "price_changed": None, "line_total": None, "available": 0,
            "availability": "This product is no longer sold.",
        }  # fmt: skip
    now = {"amount": listing.price_amount, "currency": listing.currency}
    available = max(listing.available, 0)
    short = None
    if available == 0:
        short = "Out of stock."
    elif available < wanted:
        short = f"Only {available} available."
    return {
        "sku": line["sku"],
        "name": listing.name,
        "quantity": wanted,
        "unit_price": now,
        "unit_price_when_added": added,
        "price_changed": None if now == added else {"was": added, "now": now},
        "line_total": {"amount": now["amount"] * wanted, "currency": now["currency"]},
        "available": available,
        "availability": short,
    }
