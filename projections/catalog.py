"""Catalog: products with price and available stock, for the storefront's product list,
and the names and prices orders are placed at (`current_listings`).

Synchronous by default: applied inside each inventory command's transaction.
Every write is guarded by the SKU stream's version, so an event applied twice
(in the command, then again by the runner) changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, TextClause, text

from inventory.events import (
    PriceChanged,
    ProductAdded,
    StockCommitted,
    StockReleased,
    StockReplenished,
    StockReserved,
    StockReturned,
)
from kernel.event_store import RecordedEvent
from kernel.money import Money
from kernel.write_batch import WriteBatch
from projections.projection import Mode, PostgresHandlers, PostgresProjection

VERSION = 1
"""Bump it with any change that alters what this read model stores: workers running the new
code rebuild it (docs/DESIGN.md, "Read model versions")."""

handlers: PostgresHandlers = PostgresHandlers()


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
    event: ProductAdded, writes: WriteBatch, gen: int, recorded: RecordedEvent
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
    event: PriceChanged, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    price = {"price_amount": event.price.amount, "currency": event.price.currency}
    _update(writes, gen, event.sku, recorded, **price)


class StockFigures(Protocol):
    """What every stock event carries: the SKU's stock after the change."""

    @property
    def sku(self) -> str: ...
    @property
    def on_hand(self) -> int: ...
    @property
    def available(self) -> int: ...


def stock_changed(
    event: StockFigures, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    _update(writes, gen, event.sku, recorded, on_hand=event.on_hand, available=event.available)


handlers.on(StockReplenished)(stock_changed)
handlers.on(StockReserved)(stock_changed)
handlers.on(StockReleased)(stock_changed)
handlers.on(StockCommitted)(stock_changed)
handlers.on(StockReturned)(stock_changed)  # returned goods, back on hand


def _update(
    writes: WriteBatch, gen: int, sku: str, recorded: RecordedEvent, **columns: Any
) -> None:
    writes.execute(
        _update_statement(tuple(columns)),
        {
            **columns,
            "gen": gen,
            "sku": sku,
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
    return PostgresProjection(
        "catalog", ["catalog_products"], handlers, mode, version=VERSION, sync_safe=True
    )


@dataclass(frozen=True, slots=True)
class Listing:
    """A product as the active generation lists it."""

    sku: str
    name: str
    price: Money


# Each wanted SKU's row in the active generation, and whether that row has applied
# every event of the SKU's stream; a SKU whose stream does not exist is left out.
_LISTINGS = text(
    """
    SELECT wanted.sku, p.name, p.price_amount, p.currency,
           p.stream_version IS NOT DISTINCT FROM head.version AS current
    FROM unnest(CAST(:skus AS text[]), CAST(:streams AS text[])) AS wanted(sku, stream_id)
    CROSS JOIN LATERAL (
        SELECT max(version) AS version FROM events WHERE stream_id = wanted.stream_id
    ) AS head
    LEFT JOIN LATERAL (
        SELECT name, price_amount, currency, stream_version FROM catalog_products
        WHERE sku = wanted.sku AND generation = coalesce(
            (SELECT active FROM projection_generations WHERE name = 'catalog'), 1)
    ) AS p ON true
    WHERE head.version IS NOT NULL
    """
)


def current_listings(conn: Connection, streams: Mapping[str, str]) -> dict[str, Listing | None]:
    """For each SKU of `streams` (SKU -> the stream of its stock events) that has a stream:
    its listing if the catalog has applied that stream's last event, else None (the
    catalog is behind, e.g. asynchronous or just rebuilt). One statement."""
    skus = sorted(streams)
    rows = conn.execute(_LISTINGS, {"skus": skus, "streams": [streams[sku] for sku in skus]})
    return {
        sku: Listing(sku, name, Money(amount, currency)) if current else None
        for sku, name, amount, currency, current in rows
    }
