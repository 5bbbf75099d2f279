"""Query objects: each reads one read model and returns plain data for one screen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from redis import Redis
from sqlalchemy import Engine, text

from projections.order_list import Keys, prefix

MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


class StockLevels:
    """Every product with its price and stock: on hand, reserved and available (operators)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, generation: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
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


class ProductList:
    """The storefront's product list: what is for sale, not how much is on the shelf."""

    def __init__(self, engine: Engine) -> None:
        self.levels = StockLevels(engine)

    def __call__(self, generation: int) -> list[dict[str, Any]]:
        return [
            {
                "sku": product["sku"],
                "name": product["name"],
                "price": product["price"],
                "available": product["available"],
                "in_stock": product["available"] > 0,
            }
            for product in self.levels(generation)
        ]


class OrderListing:
    """Newest first; the cursor is the score of the last order on the previous page."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def __call__(
        self,
        generation: int,
        *,
        customer_id: str | None = None,
        status: str | None = None,
        cursor: int | None = None,
        limit: int = 20,
    ) -> Page:
        keys = Keys(prefix(generation))
        if customer_id:
            source = keys.customer(customer_id)
        elif status:
            source = keys.status(status)
        else:
            source = keys.everyone()
        limit = max(1, min(limit, MAX_PAGE))
        top = f"({cursor}" if cursor is not None else "+inf"
        items: list[dict[str, Any]] = []
        while len(items) < limit:
            ids = self.redis.zrevrangebyscore(source, top, "-inf", start=0, num=limit * 2)
            if not ids:
                return Page(items, None)
            summaries = self._summaries(keys, ids)
            for summary in summaries:
                top = f"({summary['seq']}"
                if status and summary["status"] != status:
                    continue
                items.append(summary)
                if len(items) == limit:
                    break
            if len(ids) < limit * 2:
                break
        more = bool(self.redis.zrevrangebyscore(source, top, "-inf", start=0, num=1))
        return Page(items, top[1:] if more and items else None)

    def _summaries(self, keys: Keys, ids: list[Any]) -> list[dict[str, Any]]:
        with self.redis.pipeline(transaction=False) as pipe:
            for order_id in ids:
                pipe.hgetall(keys.order(_text(order_id)))
            found = []
            for raw in pipe.execute():
                if raw:
                    summary = {_text(k): _text(v) for k, v in raw.items()}
                    found.append(_summary(summary))
            return found


class OrderDetail:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, generation: int, order_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            document: dict[str, Any] | None = conn.execute(
                text("SELECT document FROM order_details WHERE generation = :g AND order_id = :id"),
                {"g": generation, "id": order_id},
            ).scalar()
            return document


class OrderHistory:
    """Every event about one order, in log order, with its causal links (from the log)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, order_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    """
                    SELECT position, stream_id, version, type, recorded_at, metadata
                    FROM events WHERE data ->> 'order_id' = :id
                    ORDER BY transaction_id, position
                    """
                ),
                {"id": order_id},
            ).mappings()
            return [
                {
                    "position": row["position"],
                    "stream_id": row["stream_id"],
                    "version": row["version"],
                    "type": row["type"],
                    "recorded_at": row["recorded_at"].isoformat(),
                    "message_id": row["metadata"]["message_id"],
                    "correlation_id": row["metadata"]["correlation_id"],
                    "causation_id": row["metadata"].get("causation_id"),
                    "actor": row["metadata"].get("actor"),
                }
                for row in rows
            ]


class SalesByDay:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, generation: int, start: date, end: date) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    """
                    SELECT day, currency, orders, revenue, cancellations, refunds, refunded
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
                }
                for row in rows
            ]


class TopProducts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, generation: int, limit: int = 10) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    """
                    SELECT sku, name, currency, units, revenue FROM sales_products
                    WHERE generation = :g AND units > 0
                    ORDER BY revenue DESC, units DESC, sku LIMIT :limit
                    """
                ),
                {"g": generation, "limit": limit},
            ).mappings()
            return [dict(row) for row in rows]


def _summary(raw: dict[str, str]) -> dict[str, Any]:
    return {
        "order_id": raw["order_id"],
        "customer_id": raw["customer_id"],
        "status": raw["status"],
        "total": {"amount": int(raw["total"]), "currency": raw["currency"]},
        "item_count": int(raw["item_count"]),
        "placed_at": raw["placed_at"],
        "seq": int(raw["seq"]),
    }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
