"""Command handlers: load, decide in the aggregates, save, return the aggregate id."""

from __future__ import annotations

from collections.abc import Iterable

from inventory.commands import (
    AddProduct,
    ChangePrice,
    CommitReservation,
    ReleaseInventory,
    ReservationLine,
    ReserveInventory,
    RestockProduct,
    ReturnStock,
)
from inventory.domain import Reservation, StockItem
from inventory.events import StockLine
from kernel.command_bus import CommandBus
from kernel.errors import DomainError, NotFound
from kernel.unit_of_work import UnitOfWork


def add_product(command: AddProduct, uow: UnitOfWork) -> str:
    if uow.load(StockItem, command.sku) is not None:
        raise DomainError(f"a product with SKU {command.sku} exists already", code="product_exists")
    uow.save(StockItem.add(command.sku, command.name, command.price, command.initial_stock))
    return command.sku


def change_price(command: ChangePrice, uow: UnitOfWork) -> str:
    item = _product(uow, command.sku)
    item.change_price(command.price)
    uow.save(item)
    return item.sku


def restock_product(command: RestockProduct, uow: UnitOfWork) -> str:
    item = _product(uow, command.sku)
    item.restock(command.quantity)
    uow.save(item)
    return item.sku


def reserve_inventory(command: ReserveInventory, uow: UnitOfWork) -> str:
    reservation = _reservation(uow, command.order_id)
    stock = _stock(uow, (line.sku for line in command.lines))
    reservation.reserve(_stock_lines(command.lines), stock)
    _save_all(uow, reservation, stock)
    return reservation.id


def release_inventory(command: ReleaseInventory, uow: UnitOfWork) -> str:
    reservation = _reservation(uow, command.order_id)
    stock = _stock(uow, reservation.skus)
    reservation.release(stock)
    _save_all(uow, reservation, stock)
    return reservation.id


def commit_reservation(command: CommitReservation, uow: UnitOfWork) -> str:
    reservation = _reservation(uow, command.order_id)
    lines = None if command.lines is None else _stock_lines(command.lines)
    stock = _stock(uow, reservation.skus if lines is None else (line.sku for line in lines))
    reservation.commit(stock, lines, command.shipment_id)
    _save_all(uow, reservation, stock)
    return reservation.id


def return_stock(command: ReturnStock, uow: UnitOfWork) -> str:
    reservation = _reservation(uow, command.order_id)
    stock = _stock(uow, (line.sku for line in command.lines))
    reservation.take_back(command.return_id, _stock_lines(command.lines), stock)
    _save_all(uow, reservation, stock)
    return reservation.id


def register(bus: CommandBus) -> None:
    """Register this context's command handlers."""
    bus.register(AddProduct, add_product)
    bus.register(ChangePrice, change_price)
    bus.register(RestockProduct, restock_product)
    bus.register(ReserveInventory, reserve_inventory)
    bus.register(ReleaseInventory, release_inventory)
    bus.register(CommitReservation, commit_reservation)
    bus.register(ReturnStock, return_stock)


def _stock_lines(lines: Iterable[ReservationLine]) -> tuple[StockLine, ...]:
    return tuple(StockLine(line.sku, line.quantity) for line in lines)


def _product(uow: UnitOfWork, sku: str) -> StockItem:
    item = uow.load(StockItem, sku)
    if item is None:
        raise NotFound(f"no product has SKU {sku}")
    return item


# Lock order for every multi-stream command: the reservation, then SKUs sorted.
def _reservation(uow: UnitOfWork, order_id: str) -> Reservation:
    return uow.load(Reservation, order_id) or Reservation(order_id)


def _stock(uow: UnitOfWork, skus: Iterable[str]) -> dict[str, StockItem]:
    """The known SKUs among `skus`; unknown ones are left out."""
    loaded = {sku: uow.load(StockItem, sku) for sku in sorted(set(skus))}
    return {sku: item for sku, item in loaded.items() if item is not None}


def _save_all(uow: UnitOfWork, reservation: Reservation, stock: dict[str, StockItem]) -> None:
    for sku in sorted(stock):
        uow.save(stock[sku])
    uow.save(reservation)
