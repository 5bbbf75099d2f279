"""The checkout as the Pricing port calls it, against the real database: list prices by
currency, quoting without redeeming, the demo pricing seeded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from config.adapters import PricingContext
from config.bootstrap import Application
from config.seed import seed_catalog, seed_pricing
from kernel.errors import DomainError
from kernel.messages import Command, Metadata
from kernel.money import Money
from kernel.results import Success
from kernel.unit_of_work import UnitOfWork
from orders.events import Discount, TaxLine
from orders.ports import CatalogEntry, CatalogLine, PricingRequest
from pricing.checkout import Checkout
from pricing.commands import CreateCoupon, SetListPrice, SetTaxRate

MUG = CatalogEntry("MUG-1", "Enamel mug", Money(1250, "EUR"))
PRICING = PricingContext(Checkout(clock=lambda: datetime(2026, 12, 6, 12, tzinfo=UTC)))


@pytest.fixture
def uow(application: Application) -> Iterator[UnitOfWork]:
    with application.engine.begin() as conn:
        yield UnitOfWork(conn, application.store, Metadata())


def _request(currency: str | None = None, coupon: str | None = None) -> PricingRequest:
    return PricingRequest("c-1", (CatalogLine(MUG, 2),), "DE", coupon, currency)


def _dispatch(application: Application, *commands: Command) -> None:
    for command in commands:
        assert isinstance(application.bus.dispatch(command), Success)


def test_an_order_in_another_currency_uses_the_list_price_or_refuses_the_sku(
    application: Application, uow: UnitOfWork
) -> None:
    _dispatch(application, SetListPrice("USD", "MUG-1", Money(1400, "USD")))

    priced = PRICING.quote(uow, _request("USD"))

    assert priced.subtotal == Money(2800, "USD")
    assert priced.lines[0].unit_price == Money(1400, "USD")
    with pytest.raises(DomainError) as error:
        PRICING.quote(uow, _request("GBP"))
    assert error.value.code == "not_sold_in_currency"


def test_a_quote_redeems_nothing_and_a_redemption_counts_once_per_order(
    application: Application, uow: UnitOfWork
) -> None:
    _dispatch(application, CreateCoupon("SAVE", "Save", usage_limit=1, percent_bp=1000))

    quoted = PRICING.quote(uow, _request(coupon="save"))
    first = PRICING.redeem(uow, "order-1", _request(coupon="save"))
    again = PRICING.redeem(uow, "order-1", _request(coupon="save"))  # a retry

    assert quoted == first == again
    assert quoted.discounts == (Discount("coupon:SAVE", "Save", Money(250, "EUR")),)
    redeemed = uow.conn.execute(
        text("SELECT count(*) FROM events WHERE type = 'CouponRedeemed'")
    ).scalar_one()
    assert redeemed == 1
    with pytest.raises(DomainError) as error:  # its one use is taken
        PRICING.quote(uow, _request(coupon="save"))
    assert error.value.code == "coupon_exhausted"


def test_the_demo_pricing_seeds_once_and_prices_the_walk_through(
    application: Application, uow: UnitOfWork
) -> None:
    seed_catalog(application.bus)
    first = seed_pricing(application.bus)
    second = seed_pricing(application.bus)

    assert first == second
    assert {"tax DE", "coupon WELCOME10", "promotion demo-mugs-and-notebooks"} <= set(first)
    mug = CatalogEntry("MUG-001", "Stoneware mug", Money(1200, "EUR"))
    request = PricingRequest("c-1", (CatalogLine(mug, 2),), "DE", "welcome10")
    priced = PRICING.quote(uow, request)
    # 2400 - 15 % (360) = 2040; - 10 % (204) = 1836; + 499 shipping = 2335; 19 % = 443.65
    assert priced.discount_total == Money(564, "EUR")
    assert priced.taxes == (TaxLine("DE", 1900, Money(2335, "EUR"), Money(444, "EUR")),)
    assert priced.total == Money(2400 - 564 + 444 + 499, "EUR")
    assert priced.prices_include_tax is True
    _dispatch(application, SetTaxRate("DE", 700, True))
    assert seed_pricing(application.bus) == first  # a rate changed since is not reset
    assert PRICING.quote(uow, request).taxes[0].rate_bp == 700
