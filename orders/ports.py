"""What the orders context needs from elsewhere, as ports that `config` wires."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from kernel.money import Money
from kernel.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    sku: str
    name: str
    unit_price: Money


class ProductCatalog(Protocol):
    """Names and current prices of products, as the write side knows them.

    Contract: read inside the placing command's transaction; returns an entry
    for every known SKU among `skus` and leaves unknown SKUs out. Never raises
    for an unknown SKU.
    """

    def describe(self, uow: UnitOfWork, skus: Collection[str]) -> Mapping[str, CatalogEntry]: ...


class PaymentLedger(Protocol):
    """Whether an order's payment was refunded, as the payments context knows it.

    Contract: read inside the shipping command's transaction, holding the payment's
    stream lock until it ends, so a refund and a shipment of one order are never each
    decided on the other not having happened.
    """

    def refunded(self, uow: UnitOfWork, order_id: str) -> bool: ...
