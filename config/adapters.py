"""Adapters that let one context use what another owns, without importing it."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from inventory.domain import StockItem
from kernel.unit_of_work import UnitOfWork
from orders.ports import CatalogEntry
from payments.gateway import PaymentGateway, SimulatedGateway


class InventoryCatalog:
    """Orders' product catalog port, answered from inventory's stock items."""

    def describe(self, uow: UnitOfWork, skus: Collection[str]) -> Mapping[str, CatalogEntry]:
        entries = {}
        for sku in sorted(set(skus)):
            item = uow.load(StockItem, sku, lock=False)
            if item is not None:
                entries[sku] = CatalogEntry(sku, item.name, item.price)
        return entries


def simulated_gateway() -> PaymentGateway:
    return SimulatedGateway()
