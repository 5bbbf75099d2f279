"""Catalog: products with price and available stock, for the storefront's product list.

Synchronous by default: applied inside each inventory command's transaction.
Every write is guarded by the SKU stream's version, so an event applied twice
(in the command, then again by the runner) changes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from inventory.events import (
    PriceChanged,
    ProductAdded,
    StockCommitted,
    StockReleased,
    StockReplenished,
    StockReserved,
)
from kernel.event_store import RecordedEvent
from projections.handlers import Handlers
from projections.projection import Mode, PostgresHandler, PostgresProjection

handlers: Handlers[PostgresHandler] = Handlers()


@handlers.on(ProductAdded)
def product_added(conn: Connection, gen: int, event: ProductAdded, recorded: RecordedEvent) -> None:
    conn.execute(
        text(
            """
            INSERT INTO catalog_products (generation, sku, name, price_amount, currency,
                on_hand, available, stream_version, updated_at)
            VALUES (:gen, :sku, :name, :amount, :currency, :stock, :stock, :version, :at)
            ON CONFLICT (generation, sku) DO NOTHING
            """
        ),
        {
            "gen": gen,
            "sku": event.sku,
            "name": event.name,
            "amount": event.price.amount,
            "currency": event.price.currency,
            "stock": event.initial_stock,
            "version": recorded.version,
            "at": recorded.recorded_at,
        },
    )


@handlers.on(PriceChanged)
def price_changed(conn: Connection, gen: int, event: PriceChanged, recorded: RecordedEvent) -> None:
    _update(conn, gen, recorded, price_amount=event.price.amount, currency=event.price.currency)


@handlers.on(StockReplenished, StockReserved, StockReleased, StockCommitted)
def stock_changed(conn: Connection, gen: int, event: Any, recorded: RecordedEvent) -> None:
    _update(conn, gen, recorded, on_hand=event.on_hand, available=event.available)


def _update(conn: Connection, gen: int, recorded: RecordedEvent, **columns: Any) -> None:
    assignments = ", ".join(f"{column} = :{column}" for column in columns)
    conn.execute(
        text(
            f"""
            UPDATE catalog_products SET {assignments}, stream_version = :version, updated_at = :at
            WHERE generation = :gen AND sku = :sku AND stream_version < :version
            """
        ),
        {
            **columns,
            "gen": gen,
            "sku": recorded.data["sku"],
            "version": recorded.version,
            "at": recorded.recorded_at,
        },
    )


def projection(mode: Mode = "sync") -> PostgresProjection:
    return PostgresProjection("catalog", ["catalog_products"], handlers, mode, sync_safe=True)
