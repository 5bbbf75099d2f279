"""Events of the inventory context.

Per-SKU events live in `stock_item-<sku>` streams and carry the stock figures
after the change; order-level reservation outcomes live in `reservation-<order_id>`,
and so do the order's shipments (ReservationCommitted) and returns (ReturnRestocked).
"""

from __future__ import annotations

from dataclasses import dataclass

from kernel.messages import Event
from kernel.money import Money


@dataclass(frozen=True, slots=True)
class StockLine:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Shortage:
    sku: str
    requested: int
    available: int


@dataclass(frozen=True, slots=True)
class ProductAdded(Event):
    sku: str
    name: str
    price: Money
    initial_stock: int


@dataclass(frozen=True, slots=True)
class PriceChanged(Event):
    sku: str
    price: Money


@dataclass(frozen=True, slots=True)
class StockReplenished(Event):
    sku: str
    quantity: int
    on_hand: int
    available: int


@dataclass(frozen=True, slots=True)
class StockReserved(Event):
    sku: str
    order_id: str
    quantity: int
    on_hand: int
    available: int


@dataclass(frozen=True, slots=True)
class StockReleased(Event):
    sku: str
    order_id: str
    quantity: int
    on_hand: int
    available: int


@dataclass(frozen=True, slots=True)
class StockCommitted(Event):
    sku: str
    order_id: str
    quantity: int
    on_hand: int
    available: int


@dataclass(frozen=True, slots=True)
class StockReturned(Event):
    """Units the order shipped came back (return `return_id`) and are on hand again."""

    sku: str
    order_id: str
    return_id: str
    quantity: int
    on_hand: int
    available: int


@dataclass(frozen=True, slots=True)
class InventoryReserved(Event):
    order_id: str
    lines: tuple[StockLine, ...]


@dataclass(frozen=True, slots=True)
class InventoryReservationFailed(Event):
    order_id: str
    shortages: tuple[Shortage, ...]


@dataclass(frozen=True, slots=True)
class InventoryReleased(Event):
    order_id: str
    lines: tuple[StockLine, ...]


@dataclass(frozen=True, slots=True)
class ReservationCommitted(Event):
    """`lines` left the warehouse (shipment `shipment_id`, "" when none was named);
    `complete` when nothing of the order is reserved any more."""

    order_id: str
    lines: tuple[StockLine, ...]
    shipment_id: str = ""
    complete: bool = True


@dataclass(frozen=True, slots=True)
class ReturnRestocked(Event):
    """The order's return `return_id` is back on hand: `lines` of what it shipped."""

    order_id: str
    return_id: str
    lines: tuple[StockLine, ...]


EVENTS: tuple[type[Event], ...] = (
    ProductAdded,
    PriceChanged,
    StockReplenished,
    StockReserved,
    StockReleased,
    StockCommitted,
    StockReturned,
    InventoryReserved,
    InventoryReservationFailed,
    InventoryReleased,
    ReservationCommitted,
    ReturnRestocked,
)
