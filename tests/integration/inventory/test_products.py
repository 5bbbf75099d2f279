"""Product commands through the real command bus and event store."""

from __future__ import annotations

from config.bootstrap import Application
from inventory.commands import AddProduct, ChangePrice, RestockProduct
from inventory.events import PriceChanged, ProductAdded, StockReplenished
from kernel.messages import Metadata
from kernel.money import Money
from kernel.results import Failure, Success
from tests.integration.inventory.conftest import AddProductFn, StreamFn


def test_adding_a_product_stores_product_added(application: Application, stream: StreamFn) -> None:
    result = application.bus.dispatch(AddProduct("MUG-001", "Mug", Money(1200, "EUR"), 40))

    assert isinstance(result, Success)
    assert result.aggregate_id == "MUG-001"
    assert stream("stock_item-MUG-001") == [ProductAdded("MUG-001", "Mug", Money(1200, "EUR"), 40)]


def test_adding_an_existing_sku_fails_and_writes_nothing(
    application: Application, add_product: AddProductFn, stream: StreamFn
) -> None:
    add_product("MUG-001", 40)

    result = application.bus.dispatch(AddProduct("MUG-001", "Other mug", Money(900, "EUR"), 1))

    assert isinstance(result, Failure)
    assert result.code == "product_exists"
    assert len(stream("stock_item-MUG-001")) == 1


def test_repeating_an_add_with_the_same_command_id_succeeds_once(
    application: Application, stream: StreamFn
) -> None:
    command = AddProduct("MUG-001", "Mug", Money(1200, "EUR"), 40)
    metadata = Metadata()

    first = application.bus.dispatch(command, metadata)
    second = application.bus.dispatch(command, metadata)

    assert isinstance(first, Success)
    assert first == second
    assert len(stream("stock_item-MUG-001")) == 1


def test_restocking_stores_the_quantity_and_new_figures(
    application: Application, add_product: AddProductFn, stream: StreamFn
) -> None:
    add_product("MUG-001", 4)

    result = application.bus.dispatch(RestockProduct("MUG-001", 6))

    assert isinstance(result, Success)
    assert stream("stock_item-MUG-001")[-1] == StockReplenished("MUG-001", 6, 10, 10)


def test_changing_the_price_stores_price_changed(
    application: Application, add_product: AddProductFn, stream: StreamFn
) -> None:
    add_product("MUG-001", 4)

    result = application.bus.dispatch(ChangePrice("MUG-001", Money(1500, "EUR")))

    assert isinstance(result, Success)
    assert stream("stock_item-MUG-001")[-1] == PriceChanged("MUG-001", Money(1500, "EUR"))


def test_changing_the_currency_fails_with_currency_mismatch(
    application: Application, add_product: AddProductFn, stream: StreamFn
) -> None:
    add_product("MUG-001", 4)

    result = application.bus.dispatch(ChangePrice("MUG-001", Money(1500, "USD")))

    assert isinstance(result, Failure)
    assert result.code == "currency_mismatch"
    assert len(stream("stock_item-MUG-001")) == 1


def test_restocking_or_repricing_an_unknown_sku_is_not_found(
    application: Application, stream: StreamFn
) -> None:
    restock = application.bus.dispatch(RestockProduct("GHOST", 1))
    reprice = application.bus.dispatch(ChangePrice("GHOST", Money(1, "EUR")))

    assert isinstance(restock, Failure)
    assert isinstance(reprice, Failure)
    assert (restock.code, reprice.code) == ("not_found", "not_found")
    assert stream("stock_item-GHOST") == []
