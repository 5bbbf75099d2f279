"""The pricing rules as the checkout reads them: lookup tables (migration 0014) that the
pricing handlers write in their commands' transactions, so a placement reads the tax
rate, the promotions in force and the list prices it needs in one statement, never
behind the log. The aggregates stay the authority; these tables mirror their state.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, text

from kernel.codec import from_data, to_data
from kernel.money import Money
from pricing.domain import parse_time
from pricing.engine import Offer, Promotion, TaxRate
from pricing.events import CouponCreated, PromotionCreated

_IN_FORCE = text(
    """
    SELECT
      (SELECT jsonb_build_array(rate_bp, prices_include_tax)
       FROM pricing_tax_rates WHERE country = :country),
      (SELECT coalesce(jsonb_agg(terms ORDER BY promotion_id), '[]'::jsonb)
       FROM pricing_promotions
       WHERE NOT ended AND starts_at <= :now AND (ends_at IS NULL OR ends_at > :now)),
      (SELECT coalesce(jsonb_object_agg(sku, amount), '{}'::jsonb)
       FROM pricing_list_prices
       WHERE currency = :currency AND sku = ANY(CAST(:skus AS text[])))
    """
)


@dataclass(frozen=True, slots=True)
class Rules:
    """What applies to one order now: its destination's rate, the running promotions and
    the list prices of its SKUs in its currency (minor units)."""

    tax: TaxRate | None
    promotions: tuple[Promotion, ...]
    list_prices: dict[str, int] = field(default_factory=dict)


def in_force(
    conn: Connection, country: str, currency: str, skus: Collection[str], now: datetime
) -> Rules:
    params = {"country": country, "currency": currency, "skus": sorted(skus), "now": now}
    tax, promotions, prices = conn.execute(_IN_FORCE, params).one()
    rate = None if tax is None else TaxRate(country, int(tax[0]), bool(tax[1]))
    running = tuple(promotion(from_data(PromotionCreated, terms)) for terms in promotions)
    return Rules(rate, running, {sku: int(amount) for sku, amount in prices.items()})


def promotion(created: PromotionCreated, *, ended: bool = False) -> Promotion:
    """The engine's view of a promotion as created."""
    starts_at = parse_time(created.starts_at)
    assert starts_at is not None
    return Promotion(
        created.promotion_id,
        created.description,
        Offer(created.percent_bp, created.amount_off),
        frozenset(created.skus),
        starts_at,
        parse_time(created.ends_at),
        ended,
    )


# --- written by the handlers, in their commands' transactions ------------------------


def set_tax_rate(conn: Connection, country: str, rate_bp: int, prices_include_tax: bool) -> None:
    conn.execute(
        text(
            "INSERT INTO pricing_tax_rates (country, rate_bp, prices_include_tax)"
            " VALUES (:country, :rate, :inclusive) ON CONFLICT (country) DO UPDATE"
            " SET rate_bp = EXCLUDED.rate_bp, prices_include_tax = EXCLUDED.prices_include_tax"
        ),
        {"country": country, "rate": rate_bp, "inclusive": prices_include_tax},
    )


def remove_tax_rate(conn: Connection, country: str) -> None:
    conn.execute(text("DELETE FROM pricing_tax_rates WHERE country = :c"), {"c": country})


def set_list_price(conn: Connection, price: Money, sku: str) -> None:
    conn.execute(
        text(
            "INSERT INTO pricing_list_prices (currency, sku, amount) VALUES (:cur, :sku, :amount)"
            " ON CONFLICT (currency, sku) DO UPDATE SET amount = EXCLUDED.amount"
        ),
        {"cur": price.currency, "sku": sku, "amount": price.amount},
    )


def remove_list_price(conn: Connection, currency: str, sku: str) -> None:
    conn.execute(
        text("DELETE FROM pricing_list_prices WHERE currency = :cur AND sku = :sku"),
        {"cur": currency, "sku": sku},
    )


def add_promotion(conn: Connection, created: PromotionCreated) -> None:
    conn.execute(
        text(
            "INSERT INTO pricing_promotions (promotion_id, starts_at, ends_at, terms)"
            " VALUES (:id, :starts, :ends, CAST(:terms AS jsonb))"
        ),
        {
            "id": created.promotion_id,
            "starts": parse_time(created.starts_at),
            "ends": parse_time(created.ends_at),
            "terms": _json(to_data(created)),
        },
    )


def end_promotion(conn: Connection, promotion_id: str) -> None:
    conn.execute(
        text("UPDATE pricing_promotions SET ended = true WHERE promotion_id = :id"),
        {"id": promotion_id},
    )


def add_coupon(conn: Connection, created: CouponCreated) -> None:
    conn.execute(
        text("INSERT INTO pricing_coupons (code, terms) VALUES (:code, CAST(:terms AS jsonb))"),
        {"code": created.code, "terms": _json(to_data(created))},
    )


def disable_coupon(conn: Connection, code: str) -> None:
    conn.execute(text("UPDATE pricing_coupons SET disabled = true WHERE code = :c"), {"c": code})


def count_redemptions(conn: Connection, code: str, uses: int) -> None:
    conn.execute(
        text("UPDATE pricing_coupons SET redemptions = :uses WHERE code = :code"),
        {"code": code, "uses": uses},
    )


def _json(data: dict[str, Any]) -> str:
    return orjson.dumps(data).decode()
