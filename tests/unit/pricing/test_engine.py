"""The pricing engine: given lines, promotions, a coupon and a tax rate, then these
figures (the stacking rule of docs/DESIGN.md, one example per clause)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kernel.errors import DomainError
from kernel.money import Money
from pricing.engine import (
    AppliedDiscount,
    AppliedTax,
    Breakdown,
    CouponOffer,
    LineToPrice,
    Offer,
    PricedItem,
    Promotion,
    ShippingPolicy,
    TaxRate,
    price,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
MUG = LineToPrice("MUG", "Enamel mug", 2, Money(1250, "EUR"))
TEE = LineToPrice("TEE", "Logo T-shirt", 1, Money(1999, "EUR"))
GERMANY = TaxRate("DE", 1900, prices_include_tax=True)


def eur(amount: int) -> Money:
    return Money(amount, "EUR")


def promotion(
    promotion_id: str,
    *skus: str,
    percent_bp: int = 0,
    amount_off: Money | None = None,
    starts_at: datetime = NOW - timedelta(days=1),
    ends_at: datetime | None = None,
) -> Promotion:
    offer = Offer(percent_bp, amount_off)
    return Promotion(
        promotion_id, f"Promotion {promotion_id}", offer, frozenset(skus), starts_at, ends_at
    )


def coupon(percent_bp: int = 0, amount_off: Money | None = None, **kwargs: Money) -> CouponOffer:
    return CouponOffer("SAVE", "Coupon SAVE", Offer(percent_bp, amount_off), **kwargs)


def test_without_rules_the_order_is_its_lines_plus_shipping() -> None:
    priced = price([MUG, TEE], now=NOW)

    assert priced == Breakdown(
        lines=(
            PricedItem("MUG", "Enamel mug", 2, eur(1250), eur(2500), eur(0), eur(0), eur(2500)),
            PricedItem("TEE", "Logo T-shirt", 1, eur(1999), eur(1999), eur(0), eur(0), eur(1999)),
        ),
        subtotal=eur(4499),
        discounts=(),
        discount_total=eur(0),
        taxes=(),
        tax_total=eur(0),
        shipping=eur(499),
        shipping_tax=eur(0),
        total=eur(4998),
        prices_include_tax=False,
        coupon_code=None,
    )


@pytest.mark.parametrize(
    ("quantity", "shipping"),
    [(3, 499), (4, 0), (5, 0)],  # 37.50, exactly 50.00, 62.50
)
def test_shipping_is_a_flat_fee_below_the_threshold_and_free_from_it(
    quantity: int, shipping: int
) -> None:
    priced = price([LineToPrice("MUG", "Enamel mug", quantity, eur(1250))], now=NOW)

    assert priced.shipping == eur(shipping)


def test_the_threshold_for_free_shipping_counts_the_goods_after_discounts() -> None:
    four_mugs = LineToPrice("MUG", "Enamel mug", 4, eur(1250))

    priced = price([four_mugs], coupon=coupon(amount_off=eur(1)), now=NOW)

    assert (priced.subtotal, priced.discount_total, priced.shipping) == (
        eur(5000), eur(1), eur(499),
    )  # fmt: skip


def test_shipping_rules_can_be_set() -> None:
    priced = price([MUG], now=NOW, shipping=ShippingPolicy(fee=300, free_from=2000))

    assert priced.shipping == eur(0)


def test_a_currency_with_its_own_shipping_figures_uses_them_and_the_others_the_default() -> None:
    rates = {"JPY": (800, 8000), "CHF": (487, 6000)}
    policy = ShippingPolicy(fee=499, free_from=5000, by_currency=rates)
    tea = LineToPrice("TEA", "Sencha", 3, Money(1500, "JPY"))  # 4,500 yen
    chocolate = LineToPrice("CHOC", "Dark chocolate", 2, Money(1000, "CHF"))

    assert price([tea], now=NOW, shipping=policy).shipping == Money(800, "JPY")
    # CHF rounds to 0.05: a fee of 4.87 is charged 4.85.
    assert price([chocolate], now=NOW, shipping=policy).shipping == Money(485, "CHF")
    assert price([MUG], now=NOW, shipping=policy).shipping == eur(499)  # 25.00 EUR


def test_tax_is_the_destinations_rate_on_goods_and_shipping_shared_over_the_lines() -> None:
    priced = price([MUG, TEE], tax=GERMANY, now=NOW)

    # 4998 x 19 % = 949.62 -> 950: 2500 : 1999 : 499 -> 475.24, 380.02, 94.82 -> 475, 380, 95
    assert priced.taxes == (AppliedTax("DE", 1900, eur(4998), eur(950)),)
    assert [line.tax for line in priced.lines] == [eur(475), eur(380)]
    assert priced.shipping_tax == eur(95)
    assert priced.total == eur(4998 + 950)
    assert priced.prices_include_tax is True


def test_a_rate_of_zero_is_a_tax_line_of_nothing() -> None:
    priced = price([MUG], tax=TaxRate("US", 0, prices_include_tax=False), now=NOW)

    assert priced.taxes == (AppliedTax("US", 0, eur(2999), eur(0)),)
    assert priced.total == eur(2999)


def test_each_line_gets_only_its_best_product_promotion() -> None:
    rules = [
        promotion("a", "MUG", percent_bp=1000),  # 250 off the mugs
        promotion("b", "MUG", amount_off=eur(200)),  # 200 a mug: 400 off, the best
        promotion("c", "TEE", percent_bp=500),  # 99.95 -> 100 off the T-shirt
    ]

    priced = price([MUG, TEE], promotions=rules, now=NOW)

    assert priced.discounts == (
        AppliedDiscount("promotion:b", "Promotion b", eur(400)),
        AppliedDiscount("promotion:c", "Promotion c", eur(100)),
    )
    assert [line.discount for line in priced.lines] == [eur(400), eur(100)]


def test_only_the_best_order_promotion_applies_then_the_coupon_on_what_is_left() -> None:
    rules = [
        promotion("mugs", "MUG", percent_bp=2000),  # 500 off the mugs: 3999 left
        promotion("small", percent_bp=500),  # 199.95 -> 200
        promotion("big", amount_off=eur(300)),  # the best order promotion: 3699 left
    ]

    priced = price([MUG, TEE], promotions=rules, coupon=coupon(percent_bp=1000), now=NOW)

    assert priced.discounts == (
        AppliedDiscount("promotion:mugs", "Promotion mugs", eur(500)),
        AppliedDiscount("promotion:big", "Promotion big", eur(300)),
        AppliedDiscount("coupon:SAVE", "Coupon SAVE", eur(370)),  # 10 % of 3699 = 369.9
    )
    assert priced.discount_total == eur(1170)
    assert sum(line.discount.amount for line in priced.lines) == 1170
    assert priced.coupon_code == "SAVE"


def test_discounts_stop_at_what_is_left() -> None:
    rules = [promotion("half", "MUG", amount_off=eur(2000))]  # more than a mug costs

    priced = price([MUG], promotions=rules, coupon=coupon(amount_off=eur(10_000)), now=NOW)

    assert priced.lines[0].discount == eur(2500)
    assert priced.discounts == (AppliedDiscount("promotion:half", "Promotion half", eur(2500)),)
    assert priced.total == eur(499)  # the coupon had nothing left to take: only shipping


@pytest.mark.parametrize(
    ("starts_at", "ends_at"),
    [
        (NOW + timedelta(hours=1), None),  # not started
        (NOW - timedelta(days=2), NOW - timedelta(days=1)),  # over
        (NOW - timedelta(days=1), NOW),  # ends as the order is priced
    ],
)
def test_promotions_outside_their_window_do_not_apply(
    starts_at: datetime, ends_at: datetime | None
) -> None:
    rules = [promotion("p", "MUG", percent_bp=5000, starts_at=starts_at, ends_at=ends_at)]

    assert price([MUG], promotions=rules, now=NOW).discount_total == eur(0)


def test_an_amount_off_in_another_currency_never_applies() -> None:
    rules = [promotion("usd", "MUG", amount_off=Money(100, "USD"))]

    assert price([MUG], promotions=rules, now=NOW).discounts == ()
    with pytest.raises(DomainError) as error:
        price([MUG], coupon=coupon(amount_off=Money(100, "USD")), now=NOW)
    assert error.value.code == "coupon_not_applicable"


def test_a_coupon_needs_its_minimum_subtotal() -> None:
    with pytest.raises(DomainError) as error:
        price([MUG], coupon=coupon(percent_bp=1000, min_subtotal=eur(2501)), now=NOW)
    assert error.value.code == "coupon_not_applicable"

    assert price(
        [MUG], coupon=coupon(percent_bp=1000, min_subtotal=eur(2500)), now=NOW
    ).discount_total == eur(250)


def test_lines_in_different_currencies_are_rejected() -> None:
    with pytest.raises(DomainError) as error:
        price([MUG, LineToPrice("BOOK", "Paperback", 1, Money(1500, "GBP"))], now=NOW)

    assert error.value.code == "mixed_currency"
    assert "EUR" in error.value.message and "GBP" in error.value.message


def test_an_order_without_lines_is_rejected() -> None:
    with pytest.raises(DomainError) as error:
        price([], now=NOW)
    assert error.value.code == "invalid"


def test_swiss_francs_round_computed_amounts_to_five_centimes() -> None:
    lamp = LineToPrice("LAMP", "Desk lamp", 1, Money(4990, "CHF"))

    priced = price([lamp], tax=TaxRate("CH", 810, False), now=NOW)

    # (4990 + 499) x 8.1 % = 444.609 -> 445 (to 0.05 CHF)
    assert priced.tax_total == Money(445, "CHF")


def test_yen_have_no_minor_unit() -> None:
    tea = LineToPrice("TEA", "Green tea", 3, Money(333, "JPY"))

    priced = price([tea], coupon=coupon(percent_bp=1000), now=NOW)

    assert priced.discount_total == Money(100, "JPY")  # 99.9 yen -> 100
