"""Pricing aggregates: given their events, when a command's decision is made, then these
events or this error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from kernel.aggregate import Aggregate
from kernel.errors import DomainError
from kernel.messages import Event
from kernel.money import Money
from pricing.domain import Coupon, PriceList, Promotion, TaxRateOfCountry
from pricing.engine import CouponOffer, Offer
from pricing.events import (
    CouponCreated,
    CouponDisabled,
    CouponRedeemed,
    CouponRedemptionReleased,
    ListPriceRemoved,
    ListPriceSet,
    PromotionCreated,
    PromotionEnded,
    TaxRateRemoved,
    TaxRateSet,
)

A = TypeVar("A", bound=Aggregate)
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
CREATED = CouponCreated("SAVE", "Save 10 %", 1000, None, 2, None, None, None)


def given(cls: type[A], aggregate_id: str, *events: Event) -> A:
    aggregate = cls(aggregate_id)
    aggregate.replay(events)
    return aggregate


# --- coupons -------------------------------------------------------------------------


def test_creating_a_coupon_stores_its_code_upper_case() -> None:
    coupon = Coupon.create(
        " save ",
        "Save 10 %",
        usage_limit=2,
        percent_bp=1000,
        amount_off=None,
        starts_at=None,
        ends_at=None,
        min_subtotal=None,
    )

    assert coupon.id == "SAVE"
    assert coupon.pending_events == (CREATED,)


@pytest.mark.parametrize(
    ("percent_bp", "amount_off", "limit", "window"),
    [
        (1000, Money(100, "EUR"), 1, (None, None)),  # both
        (0, None, 1, (None, None)),  # neither
        (10_001, None, 1, (None, None)),  # over 100 %
        (0, Money(0, "EUR"), 1, (None, None)),  # nothing off
        (1000, None, 0, (None, None)),  # no use at all
        (1000, None, 1, (NOW, NOW - timedelta(days=1))),  # ends before it starts
    ],
)
def test_a_coupon_needs_one_sound_offer_a_use_and_a_sound_window(
    percent_bp: int,
    amount_off: Money | None,
    limit: int,
    window: tuple[datetime | None, datetime | None],
) -> None:
    with pytest.raises(DomainError) as error:
        Coupon.create(
            "SAVE",
            "Save",
            usage_limit=limit,
            percent_bp=percent_bp,
            amount_off=amount_off,
            starts_at=window[0],
            ends_at=window[1],
            min_subtotal=None,
        )
    assert error.value.code == "invalid"


def test_redeeming_counts_one_use_per_order_and_says_what_it_takes_off() -> None:
    coupon = given(Coupon, "SAVE", CREATED)

    offer = coupon.redeem("order-1", NOW)
    again = coupon.redeem("order-1", NOW)  # a retried placement: no second use

    assert offer == again == CouponOffer("SAVE", "Save 10 %", Offer(1000))
    assert coupon.pending_events == (CouponRedeemed("SAVE", "order-1"),)


def test_a_coupon_used_up_is_refused_but_its_orders_may_use_it_again() -> None:
    coupon = given(
        Coupon, "SAVE", CREATED, CouponRedeemed("SAVE", "o-1"), CouponRedeemed("SAVE", "o-2")
    )

    with pytest.raises(DomainError) as error:
        coupon.redeem("o-3", NOW)

    assert error.value.code == "coupon_exhausted"
    coupon.redeem("o-2", NOW)
    assert coupon.pending_events == ()


def test_a_released_use_can_be_used_by_another_order() -> None:
    coupon = given(
        Coupon, "SAVE", CREATED, CouponRedeemed("SAVE", "o-1"), CouponRedeemed("SAVE", "o-2")
    )

    coupon.release("o-1")
    coupon.release("o-1")  # twice: nothing more
    coupon.release("never")  # never redeemed: nothing
    coupon.redeem("o-3", NOW)

    assert coupon.pending_events == (
        CouponRedemptionReleased("SAVE", "o-1"),
        CouponRedeemed("SAVE", "o-3"),
    )


@pytest.mark.parametrize(
    ("events", "code"),
    [
        ((CouponDisabled("SAVE"),), "coupon_disabled"),
        ((), "coupon_not_started"),
        ((), "coupon_expired"),
    ],
)
def test_a_coupon_disabled_or_outside_its_window_is_refused(
    events: tuple[Event, ...], code: str
) -> None:
    window = {
        "coupon_not_started": (NOW + timedelta(days=1)).isoformat(),
        "coupon_expired": (NOW - timedelta(days=1)).isoformat(),
    }
    created = CouponCreated(
        "SAVE",
        "Save",
        1000,
        None,
        5,
        window["coupon_not_started"] if code == "coupon_not_started" else None,
        window["coupon_expired"] if code == "coupon_expired" else None,
        None,
    )
    coupon = given(Coupon, "SAVE", created, *events)

    with pytest.raises(DomainError) as error:
        coupon.redeem("o-1", NOW)

    assert error.value.code == code
    assert coupon.pending_events == ()


def test_disabling_twice_records_it_once() -> None:
    coupon = given(Coupon, "SAVE", CREATED)

    coupon.disable()
    coupon.disable()

    assert coupon.pending_events == (CouponDisabled("SAVE"),)


def test_a_coupons_snapshot_restores_its_uses() -> None:
    coupon = given(Coupon, "SAVE", CREATED, CouponRedeemed("SAVE", "o-1"))

    restored = Coupon.from_snapshot("SAVE", coupon.version, coupon.snapshot_state())

    assert (restored.terms, restored.redeemed, restored.disabled) == (CREATED, {"o-1"}, False)


# --- promotions ----------------------------------------------------------------------


def test_creating_a_promotion_records_its_terms_and_ending_it_twice_once() -> None:
    promotion = Promotion.create(
        "p-1",
        "Mugs 20 % off",
        starts_at=NOW,
        ends_at=None,
        percent_bp=2000,
        amount_off=None,
        skus=("MUG", "CAP"),
    )
    promotion.end()
    promotion.end()

    assert promotion.pending_events == (
        PromotionCreated("p-1", "Mugs 20 % off", 2000, None, ("CAP", "MUG"), NOW.isoformat(), None),
        PromotionEnded("p-1"),
    )


def test_a_promotion_needs_a_time_zone() -> None:
    with pytest.raises(DomainError) as error:
        Promotion.create(
            "p-1",
            "Naive",
            starts_at=datetime(2026, 1, 1),
            ends_at=None,
            percent_bp=2000,
            amount_off=None,
            skus=(),
        )
    assert error.value.code == "invalid"


# --- tax rates and price lists -------------------------------------------------------


def test_setting_a_tax_rate_records_changes_only() -> None:
    rate = given(TaxRateOfCountry, "DE", TaxRateSet("DE", 1900, True))

    rate.set(1900, True)
    rate.set(700, True)

    assert rate.pending_events == (TaxRateSet("DE", 700, True),)


@pytest.mark.parametrize("rate_bp", [-1, 10_001])
def test_a_tax_rate_is_between_nothing_and_everything(rate_bp: int) -> None:
    with pytest.raises(DomainError) as error:
        TaxRateOfCountry("DE").set(rate_bp, True)
    assert error.value.code == "invalid"


def test_removing_a_rate_that_is_not_set_is_refused() -> None:
    rate = given(TaxRateOfCountry, "DE", TaxRateSet("DE", 1900, True), TaxRateRemoved("DE"))

    with pytest.raises(DomainError) as error:
        rate.remove()
    assert error.value.code == "tax_rate_unknown"


def test_a_price_list_takes_prices_in_its_own_currency_only() -> None:
    prices = PriceList("USD")

    prices.set("MUG", Money(1400, "USD"))
    with pytest.raises(DomainError) as error:
        prices.set("TEE", Money(1400, "EUR"))

    assert error.value.code == "currency_mismatch"
    assert prices.pending_events == (ListPriceSet("USD", "MUG", Money(1400, "USD")),)


def test_removing_a_list_price() -> None:
    prices = given(PriceList, "USD", ListPriceSet("USD", "MUG", Money(1400, "USD")))

    prices.remove("MUG")
    with pytest.raises(DomainError) as error:
        prices.remove("MUG")

    assert error.value.code == "list_price_unknown"
    assert prices.pending_events == (ListPriceRemoved("USD", "MUG"),)


def test_a_price_lists_snapshot_restores_its_prices() -> None:
    prices = given(PriceList, "USD", ListPriceSet("USD", "MUG", Money(1400, "USD")))

    restored = PriceList.from_snapshot("USD", prices.version, prices.snapshot_state())

    assert restored.prices == {"MUG": Money(1400, "USD")}
