"""Adapters that let one context use what another owns, without importing it."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import Connection

from inventory import queries as inventory
from kernel.unit_of_work import UnitOfWork, lock_streams
from orders.ports import CatalogEntry
from payments import queries as payments
from projections import catalog


class InventoryCatalog:
    """Orders' product catalog port: the catalog read model's listings (one query), and
    inventory's own answer for a SKU the read model has not caught up with. The catalog
    is synchronous by default, so it has; when it is not (asynchronous mode, a rebuild
    just switched in), the stock item answers."""

    def describe(self, uow: UnitOfWork, skus: Collection[str]) -> Mapping[str, CatalogEntry]:
        streams = {sku: inventory.stock_stream(sku) for sku in set(skus)}
        entries = {}
        for sku, listing in catalog.current_listings(uow.conn, streams).items():
            if listing is not None:
                entries[sku] = CatalogEntry(sku, listing.name, listing.price)
            elif (product := inventory.product(uow, sku)) is not None:
                entries[sku] = CatalogEntry(sku, product.name, product.price)
        return entries


class PaymentsLedger:
    """Orders' payment ledger port: the payment aggregate's own answer."""

    def refunded(self, uow: UnitOfWork, order_id: str) -> bool:
        return payments.refunded(uow, order_id)


def lock_stock(conn: Connection, skus: Collection[str]) -> None:
    """The saga's port to lock SKUs' stock streams up front (see kernel.unit_of_work)."""
    lock_streams(conn, [inventory.stock_stream(sku) for sku in skus])
