"""What other parts of the system may ask of inventory, answered from its own streams."""

from __future__ import annotations

from dataclasses import dataclass

from inventory.domain import StockItem
from kernel.money import Money
from kernel.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    price: Money


def stock_stream(sku: str) -> str:
    """The stream that holds a SKU's stock events."""
    return StockItem.stream_for(sku)


def product(uow: UnitOfWork, sku: str) -> Product | None:
    """The SKU's name and current price, from its stock item (read without locking it);
    None for an unknown SKU."""
    item = uow.load(StockItem, sku, lock=False)
    return None if item is None else Product(sku, item.name, item.price)
