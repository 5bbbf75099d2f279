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
    """Reserved stock left the warehouse: `lines` of a shipment, or (None) everything the
    order still has reserved; `shipment_id` names the shipment (again: no change)."""

    order_id: str
    lines: tuple[ReservationLine, ...] | None = None
    shipment_id: str = ""


@dataclass(frozen=True, slots=True)
class ReturnStock(Command):
    """Units a customer sent back passed inspection: back on hand, and available."""

    order_id: str
    return_id: str
    lines: tuple[ReservationLine, ...]
