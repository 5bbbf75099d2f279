"""Adapters that let one context use what another owns, without importing it."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import text

from inventory.domain import StockItem
from kernel.money import Money
from kernel.unit_of_work import UnitOfWork
from orders.ports import CatalogEntry
from payments.gateway import PaymentGateway, SimulatedGateway

# Each wanted SKU's row in the active catalog generation, and whether that row has
# applied every event of the SKU's stream. The catalog is synchronous by default,
# so it is; when it is not (asynchronous mode, a rebuild just switched in), the
# aggregate answers. No stream: an unknown SKU, left out.
_DESCRIBE = text(
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


class InventoryCatalog:
    """Orders' product catalog port, answered from the catalog read model (one query),
    or from inventory's stock items for a SKU the read model has not caught up with."""

    def describe(self, uow: UnitOfWork, skus: Collection[str]) -> Mapping[str, CatalogEntry]:
        wanted = sorted(set(skus))
        streams = [StockItem.stream_for(sku) for sku in wanted]
        rows = uow.conn.execute(_DESCRIBE, {"skus": wanted, "streams": streams})
        entries = {}
        for sku, name, amount, currency, current in rows:
            if current:
                entries[sku] = CatalogEntry(sku, name, Money(amount, currency))
            elif (item := uow.load(StockItem, sku, lock=False)) is not None:
                entries[sku] = CatalogEntry(sku, item.name, item.price)
        return entries


def simulated_gateway() -> PaymentGateway:
    return SimulatedGateway()
