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

An order may ship in parts: a commit of some lines (a shipment, named so that it is
committed once) takes just those units, and the reservation stays open until nothing is
left reserved; releasing it then frees only what did not ship. Goods that shipped may
come back (a return, named likewise): they go back on hand, never more of a SKU than
the order shipped and has not returned yet (`not_shipped`).
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
    ReturnRestocked,
    Shortage,
    StockCommitted,
    StockLine,
    StockReleased,
    StockReplenished,
    StockReserved,
    StockReturned,
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

    def commit(self, order_id: str, quantity: int | None = None) -> None:
        """`quantity` of the order's reserved units leave (None: all it holds)."""
        held = self.reservations.get(order_id)
        if held is None:
            if quantity is None:
                return
            held = 0
        taken = held if quantity is None else quantity
        _check_quantity(taken)
        if taken > held:
            raise DomainError(
                f"order {order_id} holds {held} of {self.sku} reserved, not {taken}",
                code="not_reserved",
            )
        on_hand = self.on_hand - taken
        self.record(StockCommitted(self.sku, order_id, taken, on_hand, self.available))

    def take_back(self, order_id: str, return_id: str, quantity: int) -> None:
        """`quantity` units the order shipped are back on hand (the reservation checks
        that they did ship)."""
        _check_quantity(quantity)
        self.record(
            StockReturned(
                self.sku, order_id, return_id, quantity,
                self.on_hand + quantity, self.available + quantity,
            )
        )  # fmt: skip

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
                left = self.reservations.pop(order_id) - quantity
                if left > 0:  # a shipment of part of the order
                    self.reservations[order_id] = left
                self.reserved -= quantity
                self.on_hand -= quantity
            case StockReturned(quantity=quantity):
                self.on_hand += quantity
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
    """One order's claim on stock, what of it shipped and what came back; `stock`
    arguments map SKU to its loaded StockItem."""

    stream_type = "reservation"
    snapshot_version = 2

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.status = ReservationStatus.NEW
        self.lines: tuple[StockLine, ...] = ()
        self.committed: dict[str, int] = {}  # shipped, by SKU
        self.returned: dict[str, int] = {}  # came back, by SKU
        self.shipments: set[str] = set()
        self.returns: set[str] = set()

    @property
    def still_reserved(self) -> tuple[StockLine, ...]:
        """The lines (or parts of them) reserved and not shipped yet."""
        if self.status is not ReservationStatus.RESERVED:
            return ()
        left = (StockLine(line.sku, line.quantity - self.committed.get(line.sku, 0))
                for line in self.lines)  # fmt: skip
        return tuple(line for line in left if line.quantity > 0)

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
        """Free what is still reserved (what shipped stays shipped)."""
        if self.status is not ReservationStatus.RESERVED:
            return
        left = self.still_reserved
        for line in left:
            stock[line.sku].release(self.id)
        self.record(InventoryReleased(self.id, left))

    def commit(
        self,
        stock: Mapping[str, StockItem],
        lines: Iterable[StockLine] | None = None,
        shipment_id: str = "",
    ) -> None:
        """Ship `lines` of the reserved stock, or (None) all that is still reserved. A
        shipment committed already, or a full commit of a committed reservation, is a
        no-op; more of a SKU than is still reserved is refused (`not_reserved`)."""
        if shipment_id and shipment_id in self.shipments:
            return
        if lines is None and self.status is ReservationStatus.COMMITTED:
            return
        if self.status is not ReservationStatus.RESERVED:
            raise DomainError(
                f"order {self.id} holds no reserved stock ({self.status})", code="not_reserved"
            )
        left = {line.sku: line.quantity for line in self.still_reserved}
        shipped = self.still_reserved if lines is None else _merged(lines)
        for line in shipped:
            if line.quantity > left.get(line.sku, 0):
                raise DomainError(
                    f"order {self.id} holds {left.get(line.sku, 0)} of {line.sku} reserved,"
                    f" not {line.quantity}",
                    code="not_reserved",
                )
        for line in shipped:
            stock[line.sku].commit(self.id, line.quantity)
        # Each SKU ships at most what is left of it: the totals agree only if all ships.
        complete = sum(line.quantity for line in shipped) == sum(left.values())
        self.record(ReservationCommitted(self.id, shipped, shipment_id, complete))

    def take_back(
        self, return_id: str, lines: Iterable[StockLine], stock: Mapping[str, StockItem]
    ) -> None:
        """Put returned goods back on hand. The same return again is a no-op; more of a
        SKU than the order shipped and has not returned yet is refused (`not_shipped`)."""
        if not return_id.strip():
            raise Invalid("a return needs an id")
        if return_id in self.returns:
            return
        back = _merged(lines)
        for line in back:
            out = self.committed.get(line.sku, 0) - self.returned.get(line.sku, 0)
            if line.quantity > out:
                raise DomainError(
                    f"order {self.id} has {out} of {line.sku} shipped and not returned,"
                    f" not {line.quantity}",
                    code="not_shipped",
                )
        for line in back:
            stock[line.sku].take_back(self.id, return_id, line.quantity)
        self.record(ReturnRestocked(self.id, return_id, back))

    def apply(self, event: Event) -> None:
        match event:
            case InventoryReserved(lines=lines):
                self.status, self.lines = ReservationStatus.RESERVED, lines
            case InventoryReservationFailed():
                self.status = ReservationStatus.FAILED
            case InventoryReleased():
                self.status = ReservationStatus.RELEASED
            case ReservationCommitted(lines=lines, shipment_id=shipment_id):
                _add(self.committed, lines)
                if shipment_id:
                    self.shipments.add(shipment_id)
                if event.complete:
                    self.status = ReservationStatus.COMMITTED
            case ReturnRestocked(return_id=return_id, lines=lines):
                _add(self.returned, lines)
                self.returns.add(return_id)
            case _:
                super().apply(event)

    def snapshot_state(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "lines": [{"sku": line.sku, "quantity": line.quantity} for line in self.lines],
            "committed": dict(self.committed),
            "returned": dict(self.returned),
            "shipments": sorted(self.shipments),
            "returns": sorted(self.returns),
        }

    @classmethod
    def from_snapshot(cls, aggregate_id: str, version: int, state: dict[str, Any]) -> Self:
        reservation = cls(aggregate_id)
        reservation.version = version
        reservation.status = ReservationStatus(state["status"])
        reservation.lines = tuple(StockLine(**line) for line in state["lines"])
        reservation.committed = dict(state["committed"])
        reservation.returned = dict(state["returned"])
        reservation.shipments = set(state["shipments"])
        reservation.returns = set(state["returns"])
        return reservation


def _add(counts: dict[str, int], lines: Iterable[StockLine]) -> None:
    for line in lines:
        counts[line.sku] = counts.get(line.sku, 0) + line.quantity


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
