"""Inventory aggregates: stock per SKU, and each order's reservation across SKUs.

A reservation spans several SKUs yet must be all or nothing. Each `StockItem`
records its own stock changes; a per-order `Reservation` decides the order-level
outcome and drives the stock items. The handler loads the reservation, then every
stock item in sorted SKU order (each stream locked), and saves them all in one
transaction with an expected version per stream: every stream moves or none does.

A reservation decides once. Reserving again is a no-op; so is releasing one that
holds nothing (unknown, failed, released or committed). Committing twice is a
no-op, but committing a reservation that holds nothing is refused (`not_reserved`):
goods shipped that were never set aside are a bug the caller must see.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Self

from inventory.events import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    PriceChanged,
    ProductAdded,
    ReservationCommitted,
    Shortage,
    StockCommitted,
    StockLine,
    StockReleased,
    StockReplenished,
    StockReserved,
)
from kernel.aggregate import Aggregate
from kernel.errors import DomainError, Invalid
from kernel.messages import Event
from kernel.money import Money


class StockItem(Aggregate):
    """One SKU: its name, price, stock on hand and the stock each open order holds."""

    stream_type = "stock_item"
    kept_in_memory = True  # every reservation of the SKU loads it

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.sku = aggregate_id
        self.name = ""
        self.price = Money.zero("XXX")
        self.on_hand = 0
        self.reserved = 0
        self.reservations: dict[str, int] = {}

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @classmethod
    def add(cls, sku: str, name: str, price: Money, initial_stock: int) -> StockItem:
        if not name.strip():
            raise Invalid("a product needs a name")
        _check_price(price)
        if initial_stock < 0:
            raise Invalid("initial stock cannot be negative")
        item = cls(sku)
        item.record(ProductAdded(sku, name, price, initial_stock))
        return item

    def change_price(self, price: Money) -> None:
        _check_price(price)
        if price.currency != self.price.currency:
            raise DomainError(
                f"{self.sku} is priced in {self.price.currency}, not {price.currency}",
                code="currency_mismatch",
            )
        if price != self.price:
            self.record(PriceChanged(self.sku, price))

    def restock(self, quantity: int) -> None:
        _check_quantity(quantity)
        self.record(
            StockReplenished(self.sku, quantity, self.on_hand + quantity, self.available + quantity)
        )

    def reserve(self, order_id: str, quantity: int) -> None:
        _check_quantity(quantity)
        if order_id in self.reservations:
            return
        if quantity > self.available:
            raise DomainError(
                f"{self.sku} has {self.available} available, not {quantity}",
                code="insufficient_stock",
            )
        self.record(
            StockReserved(self.sku, order_id, quantity, self.on_hand, self.available - quantity)
        )

    def release(self, order_id: str) -> None:
        quantity = self.reservations.get(order_id)
        if quantity is not None:
            self.record(
                StockReleased(self.sku, order_id, quantity, self.on_hand, self.available + quantity)
            )

    def commit(self, order_id: str) -> None:
        quantity = self.reservations.get(order_id)
        if quantity is not None:
            on_hand = self.on_hand - quantity
            self.record(StockCommitted(self.sku, order_id, quantity, on_hand, self.available))

    def apply(self, event: Event) -> None:
        match event:
            case ProductAdded(name=name, price=price, initial_stock=stock):
                self.name, self.price, self.on_hand = name, price, stock
            case PriceChanged(price=price):
                self.price = price
            case StockReplenished(quantity=quantity):
                self.on_hand += quantity
            case StockReserved(order_id=order_id, quantity=quantity):
                self.reservations[order_id] = quantity
                self.reserved += quantity
            case StockReleased(order_id=order_id, quantity=quantity):
                del self.reservations[order_id]
                self.reserved -= quantity
            case StockCommitted(order_id=order_id, quantity=quantity):
                del self.reservations[order_id]
                self.reserved -= quantity
                self.on_hand -= quantity
            case _:
                super().apply(event)

    def snapshot_state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "price": {"amount": self.price.amount, "currency": self.price.currency},
            "on_hand": self.on_hand,
            "reservations": dict(self.reservations),
        }

    @classmethod
    def from_snapshot(cls, aggregate_id: str, version: int, state: dict[str, Any]) -> Self:
        item = cls(aggregate_id)
        item.version = version
        item.name = state["name"]
        item.price = Money(state["price"]["amount"], state["price"]["currency"])
        item.on_hand = state["on_hand"]
        item.reservations = dict(state["reservations"])
        item.reserved = sum(item.reservations.values())
        return item


class ReservationStatus(StrEnum):
    NEW = "new"
    RESERVED = "reserved"
    FAILED = "failed"
    RELEASED = "released"
    COMMITTED = "committed"


class Reservation(Aggregate):
    """One order's claim on stock; `stock` arguments map SKU to its loaded StockItem."""

    stream_type = "reservation"

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.status = ReservationStatus.NEW
        self.lines: tuple[StockLine, ...] = ()

    @property
    def skus(self) -> list[str]:
        return sorted(line.sku for line in self.lines)

    def reserve(self, lines: Iterable[StockLine], stock: Mapping[str, StockItem]) -> None:
        """Reserve every line, or record which SKUs are short (unknown SKUs have none)."""
        wanted = _merged(lines)
        if self.status is not ReservationStatus.NEW:
            return
        shortages = tuple(
            Shortage(line.sku, line.quantity, available)
            for line in wanted
            if (available := _available(stock, line.sku)) < line.quantity
        )
        if shortages:
            self.record(InventoryReservationFailed(self.id, shortages))
            return
        for line in wanted:
            stock[line.sku].reserve(self.id, line.quantity)
        self.record(InventoryReserved(self.id, wanted))

    def release(self, stock: Mapping[str, StockItem]) -> None:
        if self.status is not ReservationStatus.RESERVED:
            return
        for line in self.lines:
            stock[line.sku].release(self.id)
        self.record(InventoryReleased(self.id, self.lines))

    def commit(self, stock: Mapping[str, StockItem]) -> None:
        if self.status is ReservationStatus.COMMITTED:
            return
        if self.status is not ReservationStatus.RESERVED:
            raise DomainError(
                f"order {self.id} holds no reserved stock ({self.status})", code="not_reserved"
            )
        for line in self.lines:
            stock[line.sku].commit(self.id)
        self.record(ReservationCommitted(self.id, self.lines))

    def apply(self, event: Event) -> None:
        match event:
            case InventoryReserved(lines=lines):
                self.status, self.lines = ReservationStatus.RESERVED, lines
            case InventoryReservationFailed():
                self.status = ReservationStatus.FAILED
            case InventoryReleased():
                self.status = ReservationStatus.RELEASED
            case ReservationCommitted():
                self.status = ReservationStatus.COMMITTED
            case _:
                super().apply(event)

    def snapshot_state(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "lines": [{"sku": line.sku, "quantity": line.quantity} for line in self.lines],
        }

    @classmethod
    def from_snapshot(cls, aggregate_id: str, version: int, state: dict[str, Any]) -> Self:
        reservation = cls(aggregate_id)
        reservation.version = version
        reservation.status = ReservationStatus(state["status"])
        reservation.lines = tuple(StockLine(**line) for line in state["lines"])
        return reservation


def _merged(lines: Iterable[StockLine]) -> tuple[StockLine, ...]:
    """One line per SKU, in first-seen order; every quantity must be positive."""
    totals: dict[str, int] = {}
    for line in lines:
        _check_quantity(line.quantity)
        totals[line.sku] = totals.get(line.sku, 0) + line.quantity
    if not totals:
        raise Invalid("a reservation needs at least one line")
    return tuple(StockLine(sku, quantity) for sku, quantity in totals.items())


def _available(stock: Mapping[str, StockItem], sku: str) -> int:
    item = stock.get(sku)
    return item.available if item is not None else 0


def _check_quantity(quantity: int) -> None:
    if quantity <= 0:
        raise Invalid(f"quantities must be positive, got {quantity}")


def _check_price(price: Money) -> None:
    if price.amount < 0:
        raise Invalid(f"prices cannot be negative, got {price.amount}")
