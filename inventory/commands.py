"""Commands of the inventory context."""

from __future__ import annotations

from dataclasses import dataclass

from kernel.messages import Command
from kernel.money import Money


@dataclass(frozen=True, slots=True)
class AddProduct(Command):
    sku: str
    name: str
    price: Money
    initial_stock: int


@dataclass(frozen=True, slots=True)
class ChangePrice(Command):
    sku: str
    price: Money


@dataclass(frozen=True, slots=True)
class RestockProduct(Command):
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ReservationLine:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ReserveInventory(Command):
    """Reserve every line for the order, or none of them."""

    order_id: str
    lines: tuple[ReservationLine, ...]


@dataclass(frozen=True, slots=True)
class ReleaseInventory(Command):
    order_id: str


@dataclass(frozen=True, slots=True)
class CommitReservation(Command):
    """Reserved stock leaves the warehouse: `lines` of it (one shipment of some lines,
    named by `shipment_id`: the same shipment again changes nothing), or, when None,
    everything the order still holds (the order shipped)."""

    order_id: str
    lines: tuple[ReservationLine, ...] | None = None
    shipment_id: str = ""


@dataclass(frozen=True, slots=True)
class ReturnStock(Command):
    """Goods the order shipped came back and passed inspection: back on hand, available
    again. The same `return_id` again changes nothing."""

    order_id: str
    return_id: str
    lines: tuple[ReservationLine, ...]
