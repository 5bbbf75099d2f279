"""SHIPPING_FEE, FREE_SHIPPING_FROM and SHIPPING_RATES: the pricing context's shipping
rule, as settings."""

from __future__ import annotations

import pytest

from config.settings import Settings


def test_by_default_shipping_costs_4_99_below_50_00_of_goods() -> None:
    settings = Settings.from_env({})

    assert (settings.shipping_fee, settings.free_shipping_from) == (499, 5000)


def test_both_figures_are_set_in_minor_units_and_zero_means_free() -> None:
    settings = Settings.from_env({"SHIPPING_FEE": "0", "FREE_SHIPPING_FROM": "10000"})

    assert (settings.shipping_fee, settings.free_shipping_from) == (0, 10_000)


@pytest.mark.parametrize("raw", ["4.99", "-1", "free"])
def test_a_figure_that_is_no_whole_number_is_refused_by_name(raw: str) -> None:
    with pytest.raises(ValueError, match="SHIPPING_FEE"):
        Settings.from_env({"SHIPPING_FEE": raw})


def test_a_currency_may_have_its_own_figures() -> None:
    settings = Settings.from_env({"SHIPPING_RATES": "JPY:800:8000, CHF:500:6000"})

    assert settings.shipping_rates == {"JPY": (800, 8000), "CHF": (500, 6000)}
    assert Settings.from_env({}).shipping_rates == {}


@pytest.mark.parametrize("raw", ["JPY=800/8000", "jpy:800:8000", "JPY:8.00:8000", "JPY:800"])
def test_a_rate_not_written_currency_fee_threshold_is_refused_by_name(raw: str) -> None:
    with pytest.raises(ValueError, match="SHIPPING_RATES"):
        Settings.from_env({"SHIPPING_RATES": raw})
