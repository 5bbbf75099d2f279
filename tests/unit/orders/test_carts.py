"""Given a cart's history, when a command method runs, then these events (or this refusal)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from kernel.errors import DomainError, Invalid, NotFound
from kernel.messages import Event
from orders.carts import MAX_LINES, MAX_UNITS, Cart, Touch
from orders.commands import OrderLineRequest, customer_cart_id
from orders.events import (
    CartCheckedOut,
    CartExpired,
    CartItemAdded,
    CartItemQuantityChanged,
    CartItemRemoved,
    CartLine,
    CartMergedInto,
    CartsMerged,
    CartStarted,
    CouponApplied,
    CouponRemoved,
)
from orders.ports import CatalogEntry
from tests.unit.orders.builders import CATALOG, CUSTOMER, eur

ANON = "cart-anon"
MINE = customer_cart_id(CUSTOMER)
TTL = timedelta(days=7)
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NOW = Touch(T0 + timedelta(hours=1), TTL)
AT0, AT = T0.isoformat(), NOW.at

STARTED: list[Event] = [CartStarted(ANON, None, AT0)]
WITH_MUG: list[Event] = [*STARTED, CartItemAdded(ANON, "MUG", "Enamel mug", 2, eur(1250), AT0)]
MINE_STARTED: list[Event] = [CartStarted(MINE, CUSTOMER, AT0)]
MINE_WITH_TEE: list[Event] = [
    *MINE_STARTED,
    CartItemAdded(MINE, "TEE", "Logo T-shirt", 1, eur(1999), AT0),
]


def given(history: Sequence[Event], cart_id: str = ANON) -> Cart:
    cart = Cart(cart_id)
    cart.replay(history)
    return cart


def test_starting_an_anonymous_cart_records_it_without_an_owner() -> None:
    cart = given([])

    cart.start(None, NOW)

    assert cart.pending_events == (CartStarted(ANON, None, AT),)


def test_an_anonymous_cart_never_started_is_not_found() -> None:
    cart = given([])

    with pytest.raises(NotFound):
        cart.use(None, NOW)


def test_a_customers_cart_starts_on_first_use() -> None:
    cart = given([], MINE)

    cart.use(CUSTOMER, NOW)

    assert cart.pending_events == (CartStarted(MINE, CUSTOMER, AT),)


@pytest.mark.parametrize("caller", [None, "someone-else"])
def test_a_customers_cart_is_not_found_for_anyone_else(caller: str | None) -> None:
    cart = given(MINE_STARTED, MINE)

    with pytest.raises(NotFound):
        cart.use(caller, NOW)


def test_anyone_holding_an_anonymous_carts_id_may_use_it() -> None:
    cart = given(STARTED)

    cart.use(CUSTOMER, NOW)
    cart.use(None, NOW)

    assert cart.pending_events == ()


def test_adding_an_item_records_the_catalogs_name_and_price() -> None:
    cart = given(STARTED)

    cart.add_item("TEE", 3, CATALOG, NOW)

    assert cart.pending_events == (CartItemAdded(ANON, "TEE", "Logo T-shirt", 3, eur(1999), AT),)


def test_adding_a_sku_again_adds_up_and_takes_the_price_seen_now() -> None:
    cart = given(WITH_MUG)
    cheaper = {"MUG": CatalogEntry("MUG", "Enamel mug", eur(999))}

    cart.add_item("MUG", 3, cheaper, NOW)

    assert cart.lines["MUG"] == CartLine("MUG", "Enamel mug", 5, eur(999))


def test_an_unknown_sku_is_refused() -> None:
    cart = given(STARTED)

    with pytest.raises(DomainError) as error:
        cart.add_item("NOPE", 1, CATALOG, NOW)

    assert error.value.code == "unknown_sku"
    assert cart.pending_events == ()


@pytest.mark.parametrize("quantity", [0, -1, MAX_UNITS + 1])
def test_a_quantity_out_of_bounds_is_invalid(quantity: int) -> None:
    cart = given(STARTED)

    with pytest.raises(Invalid):
        cart.add_item("MUG", quantity, CATALOG, NOW)


def test_a_line_holds_at_most_the_cap_of_units() -> None:
    cart = given(WITH_MUG)

    with pytest.raises(DomainError) as error:
        cart.add_item("MUG", MAX_UNITS - 1, CATALOG, NOW)

    assert error.value.code == "too_many_units"


def test_a_cart_holds_at_most_the_cap_of_lines() -> None:
    catalog = {f"SKU-{n}": CatalogEntry(f"SKU-{n}", "Thing", eur(100)) for n in range(MAX_LINES)}
    full = [CartItemAdded(ANON, sku, "Thing", 1, eur(100), AT0) for sku in catalog]
    cart = given([*STARTED, *full])

    with pytest.raises(DomainError) as error:
        cart.add_item("MUG", 1, CATALOG, NOW)

    assert error.value.code == "cart_full"
    cart.add_item("SKU-0", 1, catalog, NOW)  # a line already there still grows
    assert cart.lines["SKU-0"].quantity == 2


def test_a_cart_keeps_to_one_currency() -> None:
    cart = given(WITH_MUG)

    with pytest.raises(DomainError) as error:
        cart.add_item("BOOK", 1, CATALOG, NOW)

    assert error.value.code == "mixed_currency"


def test_changing_a_quantity_records_the_new_quantity() -> None:
    cart = given(WITH_MUG)

    cart.change_quantity("MUG", 5, NOW)

    assert cart.pending_events == (CartItemQuantityChanged(ANON, "MUG", 5, AT),)
    assert cart.lines["MUG"].quantity == 5


def test_changing_a_quantity_to_zero_removes_the_line() -> None:
    cart = given(WITH_MUG)

    cart.change_quantity("MUG", 0, NOW)

    assert cart.pending_events == (CartItemRemoved(ANON, "MUG", AT),)
    assert cart.lines == {}


def test_changing_a_quantity_to_what_it_is_changes_nothing() -> None:
    cart = given(WITH_MUG)

    cart.change_quantity("MUG", 2, NOW)

    assert cart.pending_events == ()


@pytest.mark.parametrize("act", ["change", "remove"])
def test_a_sku_not_in_the_cart_cannot_be_changed_or_removed(act: str) -> None:
    cart = given(WITH_MUG)

    with pytest.raises(DomainError) as error:
        if act == "change":
            cart.change_quantity("TEE", 1, NOW)
        else:
            cart.remove_item("TEE", NOW)

    assert error.value.code == "not_in_cart"


def test_removing_an_item_removes_its_line() -> None:
    cart = given(WITH_MUG)

    cart.remove_item("MUG", NOW)

    assert cart.pending_events == (CartItemRemoved(ANON, "MUG", AT),)


def test_a_coupon_is_recorded_in_upper_case_and_a_second_replaces_the_first() -> None:
    cart = given(WITH_MUG)

    cart.apply_coupon(" save10 ", NOW)
    cart.apply_coupon("SAVE10", NOW)  # the same again: nothing new
    cart.apply_coupon("winter", NOW)

    assert cart.pending_events == (
        CouponApplied(ANON, "SAVE10", AT),
        CouponApplied(ANON, "WINTER", AT),
    )
    assert cart.coupon_code == "WINTER"


def test_a_blank_coupon_is_invalid() -> None:
    cart = given(WITH_MUG)

    with pytest.raises(Invalid):
        cart.apply_coupon("   ", NOW)


def test_removing_the_coupon_records_it_once() -> None:
    cart = given([*WITH_MUG, CouponApplied(ANON, "SAVE10", AT0)])

    cart.remove_coupon(NOW)
    cart.remove_coupon(NOW)

    assert cart.pending_events == (CouponRemoved(ANON, AT),)


def test_merging_adds_up_quantities_keeps_the_coupon_and_closes_the_anonymous_cart() -> None:
    mine = given(
        [*MINE_WITH_TEE, CartItemAdded(MINE, "MUG", "Enamel mug", 1, eur(1250), AT0)], MINE
    )
    anonymous = given([*WITH_MUG, CouponApplied(ANON, "SAVE10", AT0)])

    mine.merge(anonymous, NOW)

    lines = (CartLine("MUG", "Enamel mug", 2, eur(1250)),)
    assert mine.pending_events == (CartsMerged(MINE, ANON, lines, "SAVE10", AT),)
    assert anonymous.pending_events == (CartMergedInto(ANON, MINE, AT),)
    assert {sku: line.quantity for sku, line in mine.lines.items()} == {"TEE": 1, "MUG": 3}
    assert mine.coupon_code == "SAVE10"
    with pytest.raises(NotFound):
        anonymous.use(None, NOW)


def test_merging_keeps_the_customers_own_coupon() -> None:
    mine = given([*MINE_WITH_TEE, CouponApplied(MINE, "MINE", AT0)], MINE)
    anonymous = given([*WITH_MUG, CouponApplied(ANON, "THEIRS", AT0)])

    mine.merge(anonymous, NOW)

    assert mine.coupon_code == "MINE"
    assert mine.pending_events[0] == CartsMerged(
        MINE, ANON, (CartLine("MUG", "Enamel mug", 2, eur(1250)),), None, AT
    )


def test_merging_a_cart_merged_here_already_changes_nothing() -> None:
    mine = given([*MINE_WITH_TEE], MINE)
    anonymous = given([*WITH_MUG, CartMergedInto(ANON, MINE, AT0)])

    mine.merge(anonymous, NOW)

    assert mine.pending_events == () and anonymous.pending_events == ()


def test_another_customers_cart_cannot_be_merged() -> None:
    mine = given(MINE_STARTED, MINE)
    theirs = given([CartStarted("theirs", "customer-2", AT0)], "theirs")

    with pytest.raises(NotFound):
        mine.merge(theirs, NOW)


def test_merging_past_the_cap_of_units_is_refused() -> None:
    full = CartItemAdded(MINE, "MUG", "Enamel mug", MAX_UNITS - 1, eur(1250), AT0)
    mine = given([*MINE_STARTED, full], MINE)

    with pytest.raises(DomainError) as error:
        mine.merge(given(WITH_MUG), NOW)

    assert error.value.code == "too_many_units"


def test_checking_out_records_the_order_and_empties_the_cart() -> None:
    mine = given([*MINE_WITH_TEE, CouponApplied(MINE, "SAVE10", AT0)], MINE)

    assert mine.order_lines() == (OrderLineRequest("TEE", 1),)
    mine.check_out("order-1", NOW)

    assert mine.pending_events == (CartCheckedOut(MINE, "order-1", AT),)
    assert mine.lines == {} and mine.coupon_code is None


def test_an_empty_cart_cannot_be_checked_out() -> None:
    mine = given(MINE_STARTED, MINE)

    with pytest.raises(DomainError) as error:
        mine.check_out("order-1", NOW)

    assert error.value.code == "cart_empty"


def test_a_checked_out_cart_may_be_filled_again() -> None:
    mine = given([*MINE_WITH_TEE, CartCheckedOut(MINE, "order-1", AT0)], MINE)

    mine.use(CUSTOMER, NOW)
    mine.add_item("MUG", 1, CATALOG, NOW)

    assert mine.pending_events == (CartItemAdded(MINE, "MUG", "Enamel mug", 1, eur(1250), AT),)


def test_a_cart_untouched_past_its_ttl_is_emptied_before_the_command() -> None:
    cart = given([*WITH_MUG, CouponApplied(ANON, "SAVE10", AT0)])
    later = Touch(T0 + TTL + timedelta(seconds=1), TTL)

    cart.use(None, later)
    cart.add_item("TEE", 1, CATALOG, later)

    assert cart.pending_events == (
        CartExpired(ANON, later.at),
        CartItemAdded(ANON, "TEE", "Logo T-shirt", 1, eur(1999), later.at),
    )
    assert list(cart.lines) == ["TEE"] and cart.coupon_code is None


def test_a_cart_used_within_its_ttl_does_not_expire() -> None:
    cart = given(WITH_MUG)

    cart.use(None, Touch(T0 + TTL, TTL))

    assert cart.pending_events == ()


def test_an_empty_customers_cart_past_its_ttl_expires_saying_whose_it_is() -> None:
    cart = given(MINE_STARTED, MINE)
    later = Touch(T0 + 2 * TTL, TTL)

    cart.use(CUSTOMER, later)

    assert cart.pending_events == (CartExpired(MINE, later.at, CUSTOMER),)


def test_a_snapshot_restores_the_cart() -> None:
    cart = given([*WITH_MUG, CouponApplied(ANON, "SAVE10", AT0)])

    restored = Cart.from_snapshot(ANON, cart.version, cart.snapshot_state())

    assert restored.snapshot_state() == cart.snapshot_state()
    assert restored.lines == cart.lines and restored.touched_at == cart.touched_at
