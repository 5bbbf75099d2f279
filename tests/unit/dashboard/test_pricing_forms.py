"""The pricing pages' forms and labels: given what an operator typed, when it is read,
then the pricing command it becomes; given a rule's terms, the status it is listed with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dashboard.pricing import (
    SETTINGS,
    CouponForm,
    PromotionForm,
    coupon_validity,
    discount_text,
    promotion_status,
)
from kernel.money import Money
from pricing.commands import CreateCoupon, CreatePromotion, SetListPrice, SetTaxRate

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
PROMOTION = "0b7c1f7e-4a47-4d1e-9f57-7a3a54c1c003"


def command_of(section: str, typed: dict[str, str]) -> Any:
    setting = SETTINGS[section]
    return setting.command(setting.schema().load(typed))


def test_a_tax_rate_in_percent_becomes_basis_points() -> None:
    typed = {"country": "AT", "rate": "7.5", "display": "exclusive"}

    assert command_of("taxes", typed) == SetTaxRate("AT", 750, False)


@pytest.mark.parametrize(
    ("currency", "amount", "minor"), [("EUR", "12.5", 1250), ("JPY", "1400", 1400)]
)
def test_a_list_price_is_sent_in_the_currencys_minor_units(
    currency: str, amount: str, minor: int
) -> None:
    typed = {"sku": "MUG-1", "currency": currency, "amount": amount}

    assert command_of("prices", typed) == SetListPrice(currency, "MUG-1", Money(minor, currency))


def test_a_promotion_on_skus_lists_each_once_and_reads_its_times_as_utc() -> None:
    typed = {
        "promotion_id": PROMOTION, "description": "Mugs", "kind": "amount", "amount": "2",
        "currency": "EUR", "scope": "skus", "skus": "MUG-1, TEE-1,MUG-1,",
        "starts_at": "2026-12-24T18:00",
    }  # fmt: skip

    command = command_of("promotions", typed)

    assert command == CreatePromotion(
        PROMOTION, "Mugs", datetime(2026, 12, 24, 18, 0, tzinfo=UTC), None,
        percent_bp=0, amount_off=Money(200, "EUR"), skus=("MUG-1", "TEE-1"),
    )  # fmt: skip


def test_an_order_promotion_ignores_skus_typed_and_starts_now_without_a_start() -> None:
    typed = {"promotion_id": PROMOTION, "description": "All", "kind": "percent"}
    typed |= {"percent": "12.5", "scope": "order", "skus": "MUG-1"}

    command = command_of("promotions", typed)

    assert isinstance(command, CreatePromotion)
    assert (command.percent_bp, command.amount_off, command.skus) == (1250, None, ())
    assert abs(command.starts_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_coupon_with_a_minimum_takes_it_in_its_currency() -> None:
    typed = {"code": "SAVE5", "description": "d", "kind": "percent", "percent": "5"}
    typed |= {"usage_limit": "10", "min_subtotal": "20", "currency": "GBP"}

    command = command_of("coupons", typed)

    assert command == CreateCoupon(
        "SAVE5", "d", 10, percent_bp=500, min_subtotal=Money(2000, "GBP")
    )


@pytest.mark.parametrize(
    ("schema", "typed", "field"),
    [
        (PromotionForm, {"kind": "percent", "percent": "0"}, "percent"),
        (PromotionForm, {"kind": "amount", "amount": "0", "currency": "EUR"}, "amount"),
        (CouponForm, {"code": "bad code", "kind": "percent", "percent": "5"}, "code"),
    ],
)
def test_offers_need_something_off_and_codes_a_plain_shape(
    schema: type[Any], typed: dict[str, str], field: str
) -> None:
    base = {"description": "d"} | (
        {"promotion_id": PROMOTION, "scope": "order"}
        if schema is PromotionForm
        else {"code": "SAVE", "usage_limit": "1"}
    )
    errors = schema().validate(base | typed)

    assert field in errors


def test_a_promotion_is_scheduled_then_running_then_ended() -> None:
    starts, ends = NOW.isoformat(), (NOW + timedelta(days=1)).isoformat()

    assert promotion_status(starts, ends, False, NOW - timedelta(seconds=1)) == "scheduled"
    assert promotion_status(starts, ends, False, NOW) == "running"
    assert promotion_status(starts, None, False, NOW + timedelta(days=9)) == "running"
    assert promotion_status(starts, ends, False, NOW + timedelta(days=1)) == "ended"
    assert promotion_status(starts, None, True, NOW) == "ended"


def test_a_coupon_says_why_it_cannot_be_used() -> None:
    later = (NOW + timedelta(days=1)).isoformat()
    earlier = (NOW - timedelta(days=1)).isoformat()

    assert coupon_validity(None, None, False, 0, 5, NOW) == "valid"
    assert coupon_validity(None, None, True, 0, 5, NOW) == "disabled"
    assert coupon_validity(later, None, False, 0, 5, NOW) == "not yet valid"
    assert coupon_validity(None, earlier, False, 0, 5, NOW) == "expired"
    assert coupon_validity(None, None, False, 5, 5, NOW) == "used up"


def test_discounts_read_as_percent_or_amount_off() -> None:
    assert discount_text(1250, None) == "12.5 % off"
    assert discount_text(1000, None) == "10 % off"
    assert discount_text(0, Money(500, "EUR")) == "5.00 EUR off"
