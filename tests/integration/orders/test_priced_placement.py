"""PlaceOrder priced through the pricing context: tax by destination, promotions and a
coupon, through the API, with the figures OrderPlaced records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from config.bootstrap import Application
from kernel.messages import Command, Event
from kernel.money import Money
from kernel.results import Success
from orders.events import Address, Discount, OrderPlaced, PricedLine, TaxLine
from pricing.commands import CreateCoupon, CreatePromotion, SetListPrice, SetTaxRate
from pricing.events import CouponRedeemed
from tests.integration.orders.support import Placer, order_body, problem
from tests.support.api_client import Customer
from tests.support.shop import ADDRESS_DATA

NOW = datetime.now(UTC)
GERMANY = ADDRESS_DATA | {"country": "DE", "city": "Berlin", "postal_code": "10115"}


def eur(amount: int) -> Money:
    return Money(amount, "EUR")


@pytest.fixture
def do(application: Application) -> Callable[[Command], None]:
    def dispatch(command: Command) -> None:
        assert isinstance(application.bus.dispatch(command), Success)

    return dispatch


def _placed(stream: Callable[[str], list[Event]], order_id: str) -> OrderPlaced:
    (placed,) = stream(f"order-{order_id}")
    assert isinstance(placed, OrderPlaced)
    return placed


def test_an_order_shipped_to_a_taxed_country_pays_its_tax_on_goods_and_shipping(
    do: Callable[[Command], None],
    customer: Customer,
    place_order: Placer,
    stream: Callable[[str], list[Event]],
) -> None:
    do(SetTaxRate("DE", 1900, prices_include_tax=True))

    response = place_order(customer, order_body(shipping_address=GERMANY))

    assert response.status_code == 202, response.get_json()
    placed = _placed(stream, response.get_json()["order_id"])
    # 4499 of goods + 499 shipping = 4998 taxable; 19 % = 949.62 -> 950, shared out.
    assert placed.taxes == (TaxLine("DE", 1900, eur(4998), eur(950)),)
    assert placed.lines == (
        PricedLine("MUG-1", "Enamel mug", 2, eur(1250), eur(2500), eur(0), eur(475), eur(2975)),
        PricedLine("TEE-1", "Logo T-shirt", 1, eur(1999), eur(1999), eur(0), eur(380), eur(2379)),
    )
    assert (placed.subtotal, placed.shipping, placed.tax_total, placed.total) == (
        eur(4499), eur(499), eur(950), eur(5948),
    )  # fmt: skip
    assert placed.prices_include_tax is True
    assert placed.billing_address == Address(**GERMANY)


def test_a_coupon_and_a_product_promotion_stack_and_the_coupon_use_is_counted(
    do: Callable[[Command], None],
    customer: Customer,
    place_order: Placer,
    stream: Callable[[str], list[Event]],
) -> None:
    do(SetTaxRate("DE", 1900, prices_include_tax=True))
    do(CreatePromotion("mugs", "Mugs 20 % off", NOW - timedelta(days=1), percent_bp=2000,
                       skus=("MUG-1",)))  # fmt: skip
    do(CreateCoupon("WELCOME10", "10 % off your order", usage_limit=5, percent_bp=1000))
    billing = ADDRESS_DATA | {"line2": "Flat 2", "region": "Greater London"}

    response = place_order(
        customer,
        order_body(shipping_address=GERMANY, billing_address=billing, coupon_code="welcome10"),
    )

    assert response.status_code == 202, response.get_json()
    order_id = response.get_json()["order_id"]
    placed = _placed(stream, order_id)
    # Mugs 2500 - 500 (20 %) = 2000; with the T-shirt 3999 left; coupon 10 % = 399.90 -> 400,
    # shared 2000:1999 -> 200 + 200. Goods 3599 + 499 shipping = 4098; 19 % = 778.62 -> 779.
    assert placed.discounts == (
        Discount("promotion:mugs", "Mugs 20 % off", eur(500)),
        Discount("coupon:WELCOME10", "10 % off your order", eur(400)),
    )
    assert placed.discount_total == eur(900)
    assert placed.taxes == (TaxLine("DE", 1900, eur(4098), eur(779)),)
    assert [line.discount for line in placed.lines] == [eur(700), eur(200)]
    assert placed.total == eur(4499 - 900 + 779 + 499)
    assert (
        sum(line.total.amount for line in placed.lines)
        + 499
        + (placed.tax_total.amount - sum(line.tax.amount for line in placed.lines))
        == placed.total.amount
    )
    assert placed.coupon_code == "WELCOME10"
    assert placed.billing_address == Address(**billing)
    assert stream("coupon-WELCOME10")[-1] == CouponRedeemed("WELCOME10", order_id)


def test_a_list_price_in_another_currency_is_not_used_for_an_order_in_the_base_currency(
    do: Callable[[Command], None],
    customer: Customer,
    place_order: Placer,
    stream: Callable[[str], list[Event]],
) -> None:
    do(SetListPrice("USD", "MUG-1", Money(1400, "USD")))

    response = place_order(customer, order_body(lines=[{"sku": "MUG-1", "quantity": 1}]))

    assert _placed(stream, response.get_json()["order_id"]).subtotal == eur(1250)


@pytest.mark.parametrize(
    ("setup", "code", "status", "problem_code"),
    [
        ((), "NOPE", 422, "coupon_unknown"),
        (
            (CreateCoupon("OLD", "Gone", usage_limit=5, percent_bp=1000,
                          starts_at=NOW - timedelta(days=9), ends_at=NOW - timedelta(days=1)),),
            "OLD", 422, "coupon_expired",
        ),
        (
            (CreateCoupon("BIG", "For big orders", usage_limit=5, percent_bp=1000,
                          min_subtotal=eur(10_000)),),
            "BIG", 422, "coupon_not_applicable",
        ),
        (
            (CreateCoupon("ONCE", "One use", usage_limit=1, amount_off=eur(100)),),
            "ONCE", 409, "coupon_exhausted",
        ),
    ],
)  # fmt: skip
def test_a_coupon_that_cannot_apply_is_refused_and_nothing_is_placed(
    do: Callable[[Command], None],
    customer: Customer,
    register_customer: Callable[..., Customer],
    place_order: Placer,
    count_events: Callable[[str], int],
    setup: tuple[Command, ...],
    code: str,
    status: int,
    problem_code: str,
) -> None:
    for command in setup:
        do(command)
    if problem_code == "coupon_exhausted":  # someone else used its one use
        assert (
            place_order(
                register_customer("bob@example.com"), order_body(coupon_code=code)
            ).status_code
            == 202
        )

    body = problem(place_order(customer, order_body(coupon_code=code)), status)

    assert body["type"] == "/problems/" + problem_code.replace("_", "-")
    assert count_events("OrderPlaced") == (1 if problem_code == "coupon_exhausted" else 0)
