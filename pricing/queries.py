"""What other parts of the system may ask of pricing: its rules as the admin lists them,
read from the context's lookup tables (migration 0014).

The pricing handlers write those tables in the transactions of the commands that change
them, so a list read here is never behind the log. This module reads only, and imports
nothing of the context but its events (to decode the stored terms), so the dashboard
may read through it without reaching pricing's domain, engine or handlers (pyproject's
import contracts); the checkout's own reads stay in `pricing.rules`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from kernel.codec import from_data
from kernel.money import Money
from pricing.events import CouponCreated, PromotionCreated


@dataclass(frozen=True, slots=True)
class ListedTaxRate:
    country: str
    rate_bp: int
    prices_include_tax: bool


@dataclass(frozen=True, slots=True)
class ListedPrice:
    currency: str
    sku: str
    price: Money


@dataclass(frozen=True, slots=True)
class ListedPromotion:
    terms: PromotionCreated
    ended: bool  # ended by an operator (one past its end time is not marked)


@dataclass(frozen=True, slots=True)
class ListedCoupon:
    terms: CouponCreated
    disabled: bool
    redemptions: int  # orders that used it and were not cancelled


def tax_rates(conn: Connection) -> list[ListedTaxRate]:
    """By country."""
    rows = conn.execute(
        text("SELECT country, rate_bp, prices_include_tax FROM pricing_tax_rates ORDER BY 1")
    )
    return [ListedTaxRate(country, int(rate), bool(inclusive)) for country, rate, inclusive in rows]


def tax_rate(conn: Connection, country: str) -> ListedTaxRate | None:
    """The destination's tax rate; None when it has none (untaxed)."""
    row = conn.execute(
        text("SELECT rate_bp, prices_include_tax FROM pricing_tax_rates WHERE country = :c"),
        {"c": country},
    ).first()
    return None if row is None else ListedTaxRate(country, int(row[0]), bool(row[1]))


def list_prices(conn: Connection) -> list[ListedPrice]:
    """By currency, then SKU."""
    rows = conn.execute(
        text("SELECT currency, sku, amount FROM pricing_list_prices ORDER BY currency, sku")
    )
    return [
        ListedPrice(currency, sku, Money(int(amount), currency)) for currency, sku, amount in rows
    ]


def promotions(conn: Connection) -> list[ListedPromotion]:
    """Newest start first."""
    rows = conn.execute(
        text("SELECT terms, ended FROM pricing_promotions ORDER BY starts_at DESC, promotion_id")
    )
    return [ListedPromotion(from_data(PromotionCreated, terms), ended) for terms, ended in rows]


def coupons(conn: Connection) -> list[ListedCoupon]:
    """By code."""
    rows = conn.execute(
        text("SELECT terms, disabled, redemptions FROM pricing_coupons ORDER BY code")
    )
    return [
        ListedCoupon(from_data(CouponCreated, terms), disabled, int(redemptions))
        for terms, disabled, redemptions in rows
    ]
