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
    """The order shipped: its reserved stock leaves the warehouse."""

    order_id: str
