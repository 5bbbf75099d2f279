"""Concurrent reservations on real PostgreSQL: no oversell, no partial reservation."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest

from config.bootstrap import Application
from inventory.commands import ReservationLine, ReserveInventory
from inventory.events import InventoryReservationFailed, InventoryReserved, StockReserved
from kernel.results import Result, Success
from tests.integration.inventory.conftest import AddProductFn, LoadFn, StreamFn


def run_together(application: Application, commands: list[ReserveInventory]) -> list[Result]:
    barrier = threading.Barrier(len(commands))
    results: list[Result] = []

    def work(command: ReserveInventory) -> Callable[[], None]:
        def run() -> None:
            barrier.wait()
            results.append(application.bus.dispatch(command))

        return run

    threads = [threading.Thread(target=work(command)) for command in commands]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def one(order_id: str, **lines: int) -> ReserveInventory:
    return ReserveInventory(order_id, tuple(ReservationLine(s, q) for s, q in lines.items()))


@pytest.mark.slow
def test_fifty_concurrent_orders_for_ten_items_reserve_exactly_ten(
    application: Application, add_product: AddProductFn, stream: StreamFn, stock_item: LoadFn
) -> None:
    add_product("HOT", 10)
    orders = [f"o-{n}" for n in range(50)]

    results = run_together(application, [one(order, HOT=1) for order in orders])

    assert len(results) == 50
    assert all(isinstance(result, Success) for result in results)
    outcomes = Counter(type(stream(f"reservation-{order}")[0]) for order in orders)
    assert outcomes == {InventoryReserved: 10, InventoryReservationFailed: 40}
    item = stock_item("HOT")
    assert (item.on_hand, item.reserved, item.available) == (10, 10, 0)


@pytest.mark.slow
def test_two_sku_orders_racing_single_sku_orders_are_all_or_nothing(
    application: Application, add_product: AddProductFn, stream: StreamFn, stock_item: LoadFn
) -> None:
    add_product("A", 6)
    add_product("B", 6)
    orders = (
        [one(f"ab-{n}", A=1, B=1) for n in range(10)]
        + [one(f"a-{n}", A=2) for n in range(10)]
        + [one(f"b-{n}", B=2) for n in range(10)]
    )

    results = run_together(application, orders)

    assert all(isinstance(result, Success) for result in results)
    held: dict[str, dict[str, int]] = {"A": {}, "B": {}}
    for sku in held:
        for event in stream(f"stock_item-{sku}"):
            if isinstance(event, StockReserved):
                held[sku][event.order_id] = event.quantity
    outcomes: Counter[type] = Counter()
    for command in orders:
        (outcome,) = stream(f"reservation-{command.order_id}")
        outcomes[type(outcome)] += 1
        wanted = {line.sku: line.quantity for line in command.lines}
        expected = wanted if isinstance(outcome, InventoryReserved) else {}
        holding = {
            sku: held[sku][command.order_id] for sku in held if command.order_id in held[sku]
        }
        assert holding == expected, command.order_id
    assert outcomes[InventoryReserved] > 0
    assert outcomes[InventoryReservationFailed] > 0
    for sku in held:
        item = stock_item(sku)
        assert item.reserved == sum(held[sku].values()) <= item.on_hand == 6
