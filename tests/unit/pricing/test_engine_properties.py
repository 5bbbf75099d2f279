"""Properties of the pricing engine over random orders, promotions, coupons and rates:
the figures add up, nothing goes negative, rounding is stable, and discounts never stack
beyond the rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.money import Money, allocate, round_minor
from pricing.engine import (
    Breakdown,
    CouponOffer,
    LineToPrice,
    Offer,
    Promotion,
    TaxRate,
    price,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SKUS = ("A", "B", "C", "D", "E")
currencies = st.sampled_from(["EUR", "USD", "GBP", "JPY", "CHF"])


def offers(currency: str) -> st.SearchStrategy[Offer]:
    return st.one_of(
        st.builds(Offer, percent_bp=st.integers(1, 10_000)),
        st.builds(
            Offer,
            amount_off=st.builds(Money, st.integers(1, 20_000), st.just(currency)),
        ),
    )


@st.composite
def orders(
    draw: st.DrawFn,
) -> tuple[list[LineToPrice], list[Promotion], CouponOffer | None, TaxRate | None]:
    currency = draw(currencies)
    skus = draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=5, unique=True))
    lines = [
        LineToPrice(sku, f"Product {sku}", draw(st.integers(1, 20)),
                    Money(draw(st.integers(0, 100_000)), currency))
        for sku in skus
    ]  # fmt: skip
    promotions = [
        Promotion(
            f"p{n}", f"Promotion {n}", draw(offers(currency)),
            frozenset(draw(st.lists(st.sampled_from(SKUS), max_size=3))),
            NOW - timedelta(days=draw(st.integers(-1, 3))),
            draw(st.none() | st.just(NOW + timedelta(days=1))),
        )
        for n in range(draw(st.integers(0, 6)))
    ]  # fmt: skip
    coupon = draw(st.none() | st.builds(CouponOffer, st.just("SAVE"), st.just("Coupon"),
                                        offers(currency)))  # fmt: skip
    tax = draw(st.none() | st.builds(TaxRate, st.just("DE"), st.integers(0, 10_000), st.booleans()))
    return lines, promotions, coupon, tax


def _priced(
    order: tuple[list[LineToPrice], list[Promotion], CouponOffer | None, TaxRate | None],
) -> Breakdown:
    lines, promotions, coupon, tax = order
    return price(lines, promotions=promotions, coupon=coupon, tax=tax, now=NOW)


@settings(max_examples=300)
@given(orders())
def test_the_figures_add_up_and_nothing_is_negative(
    order: tuple[list[LineToPrice], list[Promotion], CouponOffer | None, TaxRate | None],
) -> None:
    priced = _priced(order)

    assert priced.total == (
        priced.subtotal - priced.discount_total + priced.tax_total + priced.shipping
    )
    assert priced.subtotal.amount == sum(line.line_total.amount for line in priced.lines)
    assert priced.discount_total.amount == sum(d.amount.amount for d in priced.discounts)
    assert priced.discount_total.amount == sum(line.discount.amount for line in priced.lines)
    assert priced.tax_total.amount == (
        sum(line.tax.amount for line in priced.lines) + priced.shipping_tax.amount
    )
    for line in priced.lines:  # a line's parts add up: returns refund by line
        assert line.line_total == line.unit_price * line.quantity
        assert line.total == line.line_total - line.discount + line.tax
        assert 0 <= line.discount.amount <= line.line_total.amount
        assert line.tax.amount >= 0
    assert all(d.amount.amount > 0 for d in priced.discounts)
    assert 0 <= priced.discount_total.amount <= priced.subtotal.amount
    assert priced.total.amount >= 0


@settings(max_examples=300)
@given(orders())
def test_discounts_never_stack_beyond_the_rule(
    order: tuple[list[LineToPrice], list[Promotion], CouponOffer | None, TaxRate | None],
) -> None:
    lines, promotions, coupon, _ = order
    priced = _priced(order)

    by_id = {promotion.source: promotion for promotion in promotions}
    applied = [by_id[d.source] for d in priced.discounts if d.source in by_id]
    # At most one automatic order promotion, and at most one coupon.
    assert sum(not promotion.on_products for promotion in applied) <= 1
    assert sum(d.source.startswith("coupon:") for d in priced.discounts) <= (1 if coupon else 0)
    # Each line at most one product promotion: the product promotions' total is no more
    # than the best single promotion per line could take.
    product_total = sum(d.amount.amount for d in priced.discounts
                        if d.source in by_id and by_id[d.source].on_products)  # fmt: skip
    best_per_line = 0
    for line in lines:
        total = line.unit_price * line.quantity
        takes = [p.offer.off(total, line.quantity).amount for p in promotions
                 if line.sku in p.skus and p.in_force(NOW)]  # fmt: skip
        best_per_line += max(takes, default=0)
    assert product_total == best_per_line
    assert len({d.source for d in priced.discounts}) == len(priced.discounts)


@settings(max_examples=200)
@given(orders())
def test_pricing_is_stable_and_a_lines_product_discount_does_not_depend_on_the_others(
    order: tuple[list[LineToPrice], list[Promotion], CouponOffer | None, TaxRate | None],
) -> None:
    lines, promotions, _, _ = order
    assert _priced(order) == _priced(order)

    together = price(lines, promotions=[p for p in promotions if p.on_products], now=NOW)
    for line, priced_line in zip(lines, together.lines, strict=True):
        alone = price([line], promotions=[p for p in promotions if p.on_products], now=NOW)
        assert alone.lines[0].discount == priced_line.discount


@given(
    currencies,
    st.integers(0, 10**12),
    st.integers(1, 10**6),
)
def test_rounding_is_half_up_to_the_currencys_step(
    currency: str, numerator: int, denominator: int
) -> None:
    rounded = round_minor(currency, numerator, denominator)
    step = 5 if currency == "CHF" else 1

    assert rounded % step == 0
    assert abs(rounded * denominator - numerator) * 2 <= step * denominator
    # a tie goes up
    assert round_minor(currency, step, 2) == step


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**7), min_size=1, max_size=20))
def test_allocation_parts_add_up_and_follow_the_weights(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)

    assert sum(parts) == total
    assert all(part >= 0 for part in parts)
    whole = sum(weights) or len(weights)
    for part, weight in zip(parts, weights if sum(weights) else [1] * len(weights), strict=True):
        assert abs(part * whole - total * weight) < whole  # within one unit of its share
