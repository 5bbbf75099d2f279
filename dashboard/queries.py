"""The dashboard's own query object, on the catalog read model (never the write side)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text


class StockLevels:
    """Every product with its price and stock: on hand, reserved and available.

    The storefront's ProductList leaves out what is on hand; the operator needs it.
    """

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
