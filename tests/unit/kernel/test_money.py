"""The rounding rule of kernel.money: half up to the currency's step, exact integers."""

from __future__ import annotations

import pytest

from kernel.money import Money, allocate, fraction_of, round_minor


@pytest.mark.parametrize(
    ("currency", "numerator", "denominator", "rounded"),
    [
        ("EUR", 5, 10, 1),  # 0.5 cent: a tie goes up
        ("EUR", 4, 10, 0),
        ("EUR", 1999 * 1900, 10_000, 380),  # 19 % of 19.99 = 3.7981
        ("USD", 15, 10, 2),
        ("JPY", 999, 10, 100),  # 10 % of 999 yen = 99.9 yen
        ("CHF", 1249, 100, 10),  # 12.49 centimes -> 0.10
        ("CHF", 125, 10, 15),  # 12.5 centimes: a tie of 10 and 15 goes up
        ("CHF", 122, 10, 10),
    ],
)
def test_computed_amounts_round_half_up_to_the_currencys_step(
    currency: str, numerator: int, denominator: int, rounded: int
) -> None:
    assert round_minor(currency, numerator, denominator) == rounded


def test_a_fraction_of_money_keeps_its_currency() -> None:
    assert fraction_of(Money(2499, "GBP"), 2000) == Money(500, "GBP")  # 499.8 -> 500


def test_allocation_splits_exactly_by_largest_remainder() -> None:
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(400, [2000, 1999]) == [200, 200]
    assert allocate(7, [0, 0]) == [4, 3]  # no weights: equal shares
    assert allocate(0, [5, 5]) == [0, 0]


def test_money_prints_with_its_currencys_decimals() -> None:
    assert str(Money(1999, "EUR")) == "19.99 EUR"
    assert str(Money(1999, "JPY")) == "1999 JPY"
