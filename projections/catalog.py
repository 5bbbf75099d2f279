"""Catalog: products with price and available stock, for the storefront's product list.

Synchronous by default: applied inside each inventory command's transaction.
Every write is guarded by the SKU stream's version, so an event applied twice
(in the command, then again by the runner) changes nothing.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import TextClause, text

from inventory.events import (
    PriceChanged,
    ProductAdded,
    StockCommitted,
    StockReleased,
    StockReplenished,
    StockReserved,
)
from kernel.event_store import RecordedEvent
from kernel.write_batch import WriteBatch
from projections.handlers import Handlers
from projections.projection import Mode, PostgresHandler, PostgresProjection

handlers: Handlers[PostgresHandler] = Handlers()


_ADD = text(
    """
    INSERT INTO catalog_products (generation, sku, name, price_amount, currency,
        on_hand, available, stream_version, updated_at)
    VALUES (:gen, :sku, :name, :amount, :currency, :stock, :stock, :version, :at)
    ON CONFLICT (generation, sku) DO NOTHING
    """
)


@handlers.on(ProductAdded)
def product_added(
    writes: WriteBatch, gen: int, event: ProductAdded, recorded: RecordedEvent
) -> None:
    writes.execute(
        _ADD,
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
def price_changed(
    writes: WriteBatch, gen: int, event: PriceChanged, recorded: RecordedEvent
) -> None:
    _update(writes, gen, recorded, price_amount=event.price.amount, currency=event.price.currency)


@handlers.on(StockReplenished, StockReserved, StockReleased, StockCommitted)
def stock_changed(writes: WriteBatch, gen: int, event: Any, recorded: RecordedEvent) -> None:
    _update(writes, gen, recorded, on_hand=event.on_hand, available=event.available)


def _update(writes: WriteBatch, gen: int, recorded: RecordedEvent, **columns: Any) -> None:
    writes.execute(
        _update_statement(tuple(columns)),
        {
            **columns,
            "gen": gen,
            "sku": recorded.data["sku"],
            "version": recorded.version,
            "at": recorded.recorded_at,
        },
    )


@functools.cache
def _update_statement(columns: tuple[str, ...]) -> TextClause:
    assignments = ", ".join(f"{column} = :{column}" for column in columns)
    return text(
        f"""
        UPDATE catalog_products SET {assignments}, stream_version = :version, updated_at = :at
        WHERE generation = :gen AND sku = :sku AND stream_version < :version
        """
    )


def projection(mode: Mode = "sync") -> PostgresProjection:
    return PostgresProjection("catalog", ["catalog_products"], handlers, mode, sync_safe=True)
