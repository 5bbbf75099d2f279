"""StockItem: given its events, when a decision is made, then these events or this error."""

from __future__ import annotations

import pytest

from inventory.domain import StockItem
from inventory.events import (
    PriceChanged,
    ProductAdded,
    StockCommitted,
    StockReleased,
    StockReplenished,
    StockReserved,
    StockReturned,
)
from kernel.errors import DomainError
from kernel.messages import Event
from kernel.money import Money

SKU = "MUG-001"
ADDED = ProductAdded(SKU, "Stoneware mug", Money(1200, "EUR"), 10)


def given(*events: Event) -> StockItem:
    item = StockItem(SKU)
    item.replay(events)
    return item


def test_adding_a_product_records_its_name_price_and_stock() -> None:
    item = StockItem.add(SKU, "Stoneware mug", Money(1200, "EUR"), 10)

    assert item.pending_events == (ADDED,)
    assert (item.name, item.price, item.on_hand, item.available) == (
        "Stoneware mug", Money(1200, "EUR"), 10, 10,
    )  # fmt: skip


def test_a_product_may_start_with_no_stock_and_a_zero_price() -> None:
    item = StockItem.add(SKU, "Free sample", Money(0, "EUR"), 0)

    assert item.pending_events == (ProductAdded(SKU, "Free sample", Money(0, "EUR"), 0),)


@pytest.mark.parametrize(
    ("name", "price", "stock"),
    [("  ", Money(1200, "EUR"), 1), ("Mug", Money(-1, "EUR"), 1), ("Mug", Money(1, "EUR"), -1)],
)
def test_adding_a_product_rejects_a_blank_name_a_negative_price_or_stock(
    name: str, price: Money, stock: int
) -> None:
    with pytest.raises(DomainError) as error:
        StockItem.add(SKU, name, price, stock)
    assert error.value.code == "invalid"


def test_changing_the_price_records_it() -> None:
    item = given(ADDED)

    item.change_price(Money(1500, "EUR"))

    assert item.pending_events == (PriceChanged(SKU, Money(1500, "EUR")),)
    assert item.price == Money(1500, "EUR")


def test_changing_to_the_current_price_records_nothing() -> None:
    item = given(ADDED, PriceChanged(SKU, Money(900, "EUR")))

    item.change_price(Money(900, "EUR"))

    assert item.pending_events == ()


def test_changing_the_currency_is_rejected() -> None:
    item = given(ADDED)

    with pytest.raises(DomainError) as error:
        item.change_price(Money(1200, "USD"))
    assert error.value.code == "currency_mismatch"
    assert item.pending_events == ()


def test_a_negative_price_is_rejected() -> None:
    with pytest.raises(DomainError) as error:
        given(ADDED).change_price(Money(-1, "EUR"))
    assert error.value.code == "invalid"


def test_restocking_records_the_quantity_and_the_new_figures() -> None:
    item = given(ADDED, StockReserved(SKU, "o-1", 4, 10, 6))

    item.restock(5)

    assert item.pending_events == (StockReplenished(SKU, 5, on_hand=15, available=11),)
    assert (item.on_hand, item.reserved, item.available) == (15, 4, 11)


@pytest.mark.parametrize("quantity", [0, -3])
def test_restocking_needs_a_positive_quantity(quantity: int) -> None:
    with pytest.raises(DomainError) as error:
        given(ADDED).restock(quantity)
    assert error.value.code == "invalid"


def test_reserving_holds_stock_for_the_order() -> None:
    item = given(ADDED)

    item.reserve("o-1", 3)

    assert item.pending_events == (StockReserved(SKU, "o-1", 3, on_hand=10, available=7),)
    assert (item.on_hand, item.reserved, item.available) == (10, 3, 7)
    assert item.reservations == {"o-1": 3}


def test_reserving_all_that_is_available_is_allowed() -> None:
    item = given(ADDED, StockReserved(SKU, "o-1", 4, 10, 6))

    item.reserve("o-2", 6)

    assert item.available == 0


def test_reserving_more_than_is_available_is_rejected() -> None:
    item = given(ADDED, StockReserved(SKU, "o-1", 4, 10, 6))

    with pytest.raises(DomainError) as error:
        item.reserve("o-2", 7)
    assert error.value.code == "insufficient_stock"
    assert item.pending_events == ()


def test_reserving_again_for_the_same_order_records_nothing() -> None:
    item = given(ADDED, StockReserved(SKU, "o-1", 4, 10, 6))

    item.reserve("o-1", 4)

    assert item.pending_events == ()


@pytest.mark.parametrize("quantity", [0, -1])
def test_reserving_needs_a_positive_quantity(quantity: int) -> None:
    with pytest.raises(DomainError) as error:
        given(ADDED).reserve("o-1", quantity)
    assert error.value.code == "invalid"


def test_releasing_returns_the_orders_stock() -> None:
    item = given(ADDED, StockReserved(SKU, "o-1", 4, 10, 6))

    item.release("o-1")

    assert item.pending_events == (StockReleased(SKU, "o-1", 4, on_hand=10, available=10),)
    assert (item.on_hand, item.reserved, item.reservations) == (10, 0, {})


def test_releasing_an_order_that_holds_nothing_records_nothing() -> None:
    item = given(ADDED, StockReserved(SKU, "o-1", 4, 10, 6), StockReleased(SKU, "o-1", 4, 10, 10))

    item.release("o-1")
    item.release("o-unknown")

    assert item.pending_events == ()


def test_committing_takes_the_orders_stock_off_hand() -> None:
    item = given(ADDED, StockReserved(SKU, "o-1", 4, 10, 6), StockReserved(SKU, "o-2", 1, 10, 5))

    item.commit("o-1")

    assert item.pending_events == (StockCommitted(SKU, "o-1", 4, on_hand=6, available=5),)
    assert (item.on_hand, item.reserved, item.available) == (6, 1, 5)


def test_committing_an_order_that_holds_nothing_records_nothing() -> None:
    item = given(ADDED, StockReserved(SKU, "o-1", 4, 10, 6), StockCommitted(SKU, "o-1", 4, 6, 6))

    item.commit("o-1")
    item.commit("o-unknown")

    assert item.pending_events == ()


def test_committing_part_of_an_order_takes_just_those_units_and_keeps_the_rest_reserved() -> None:
    item = given(ADDED, StockReserved(SKU, "o-1", 4, 10, 6))

    item.commit("o-1", 3)

    assert item.pending_events == (StockCommitted(SKU, "o-1", 3, on_hand=7, available=6),)
    assert (item.on_hand, item.reserved, item.reservations) == (7, 1, {"o-1": 1})


@pytest.mark.parametrize(("order", "quantity"), [("o-1", 5), ("o-unknown", 1)])
def test_committing_more_than_the_order_holds_is_rejected(order: str, quantity: int) -> None:
    item = given(ADDED, StockReserved(SKU, "o-1", 4, 10, 6))

    with pytest.raises(DomainError) as error:
        item.commit(order, quantity)

    assert error.value.code == "not_reserved"
    assert item.pending_events == ()


def test_returned_units_are_back_on_hand_and_available() -> None:
    item = given(ADDED, StockReserved(SKU, "o-1", 4, 10, 6), StockCommitted(SKU, "o-1", 4, 6, 6))

    item.take_back("o-1", "ret-1", 2)

    assert item.pending_events == (StockReturned(SKU, "o-1", "ret-1", 2, on_hand=8, available=8),)
    assert (item.on_hand, item.available) == (8, 8)


def test_a_snapshot_restores_the_same_state() -> None:
    item = given(
        ADDED,
        PriceChanged(SKU, Money(1500, "EUR")),
        StockReserved(SKU, "o-1", 4, 10, 6),
        StockReserved(SKU, "o-2", 2, 10, 4),
        StockCommitted(SKU, "o-2", 1, 9, 4),
        StockReturned(SKU, "o-2", "ret-1", 1, 10, 5),
    )

    restored = StockItem.from_snapshot(SKU, item.version, item.snapshot_state())

    assert restored.snapshot_state() == item.snapshot_state()
    assert (restored.version, restored.reserved, restored.available) == (6, 5, 5)
    assert restored.price == Money(1500, "EUR")
