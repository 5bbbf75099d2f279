from __future__ import annotations

from collections.abc import Callable

import pytest

from config.bootstrap import Application
from inventory.commands import AddProduct
from inventory.domain import StockItem
from kernel.messages import Event, Metadata
from kernel.money import Money
from kernel.results import Success
from kernel.unit_of_work import UnitOfWork

AddProductFn = Callable[[str, int], None]
StreamFn = Callable[[str], list[Event]]
LoadFn = Callable[[str], StockItem]


@pytest.fixture
def add_product(application: Application) -> AddProductFn:
    def add(sku: str, stock: int) -> None:
        result = application.bus.dispatch(
            AddProduct(sku, f"Product {sku}", Money(1200, "EUR"), stock)
        )
        assert isinstance(result, Success), result

    return add


@pytest.fixture
def stream(application: Application) -> StreamFn:
    """The events stored in one stream, in order."""

    def read(stream_id: str) -> list[Event]:
        with application.engine.connect() as conn:
            return [recorded.event for recorded in application.store.read_stream(conn, stream_id)]

    return read


@pytest.fixture
def stock_item(application: Application) -> LoadFn:
    """A StockItem loaded the way commands load it (snapshot + later events)."""

    def load(sku: str) -> StockItem:
        with application.engine.begin() as conn:
            uow = UnitOfWork(conn, application.store, Metadata())
            return uow.get(StockItem, sku, lock=False)

    return load
