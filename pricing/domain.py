"""Pricing aggregates: a price list per currency, a tax rate per country, promotions and
coupons. Each decides its own rules; the engine (pricing.engine) turns them into figures.

A coupon's usage limit is its stream's to hold: redeeming loads the coupon under its
stream lock inside the placing transaction and records CouponRedeemed, so concurrent
placements queue on the lock, each sees the uses before it, and the expected version on
append catches anything else. Redemptions are keyed by order: redeeming again for the
same order, or releasing a use never made, records nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from kernel.aggregate import Aggregate
from kernel.codec import from_data, to_data
from kernel.errors import DomainError, Invalid
from kernel.messages import Event
from kernel.money import Money
from pricing.engine import FULL_BP, CouponOffer, Offer
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

MAX_TAX_BP = 10_000  # no rate above 100 %


def iso(moment: datetime | None) -> str | None:
    """How events store a time: ISO 8601, always with its offset (naive times refused)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise Invalid("times need a time zone")
    return moment.isoformat()


def parse_time(stored: str | None) -> datetime | None:
    return None if stored is None else datetime.fromisoformat(stored)


def check_offer(percent_bp: int, amount_off: Money | None) -> None:
    """Exactly one of a percentage (1 bp to 100 %) and a positive amount."""
    if (percent_bp == 0) == (amount_off is None):
        raise Invalid("give either a percentage or an amount off, not both or neither")
    if amount_off is None and not 0 < percent_bp <= FULL_BP:
        raise Invalid(f"a percentage off is 1 to {FULL_BP} basis points, got {percent_bp}")
    if amount_off is not None and amount_off.amount <= 0:
        raise Invalid("an amount off must be positive")


def _check_window(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise Invalid("a validity window must end after it starts")


class PriceList(Aggregate):
    """The prices of SKUs in one currency, where they differ from their base price."""

    stream_type = "price_list"

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.currency = aggregate_id
        self.prices: dict[str, Money] = {}

    def set(self, sku: str, price: Money) -> None:
        if price.currency != self.currency:
            raise DomainError(
                f"the {self.currency} price list takes prices in {self.currency},"
                f" not {price.currency}",
                code="currency_mismatch",
            )
        if price.amount < 0:
            raise Invalid(f"prices cannot be negative, got {price.amount}")
        if self.prices.get(sku) != price:
            self.record(ListPriceSet(self.currency, sku, price))

    def remove(self, sku: str) -> None:
        if sku not in self.prices:
            raise DomainError(
                f"{sku} has no list price in {self.currency}", code="list_price_unknown"
            )
        self.record(ListPriceRemoved(self.currency, sku))

    def apply(self, event: Event) -> None:
        match event:
            case ListPriceSet(sku=sku, price=price):
                self.prices[sku] = price
            case ListPriceRemoved(sku=sku):
                del self.prices[sku]
            case _:
                super().apply(event)


class TaxRateOfCountry(Aggregate):
    """The tax orders shipping to one country pay (none while no rate is set)."""

    stream_type = "tax_rate"

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.country = aggregate_id
        self.rate_bp: int | None = None
        self.prices_include_tax = False

    def set(self, rate_bp: int, prices_include_tax: bool) -> None:
        if not 0 <= rate_bp <= MAX_TAX_BP:
            raise Invalid(f"a tax rate is 0 to {MAX_TAX_BP} basis points, got {rate_bp}")
        if (self.rate_bp, self.prices_include_tax) != (rate_bp, prices_include_tax):
            self.record(TaxRateSet(self.country, rate_bp, prices_include_tax))

    def remove(self) -> None:
        if self.rate_bp is None:
            raise DomainError(f"{self.country} has no tax rate", code="tax_rate_unknown")
        self.record(TaxRateRemoved(self.country))

    def apply(self, event: Event) -> None:
        match event:
            case TaxRateSet(rate_bp=rate_bp, prices_include_tax=inclusive):
                self.rate_bp, self.prices_include_tax = rate_bp, inclusive
            case TaxRateRemoved():
                self.rate_bp, self.prices_include_tax = None, False
            case _:
                super().apply(event)


class Promotion(Aggregate):
    """An automatic discount, running from its start until its end or until ended."""

    stream_type = "promotion"

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.created: PromotionCreated | None = None
        self.ended = False

    @classmethod
    def create(
        cls,
        promotion_id: str,
        description: str,
        *,
        starts_at: datetime,
        ends_at: datetime | None,
        percent_bp: int,
        amount_off: Money | None,
        skus: tuple[str, ...],
    ) -> Promotion:
        if not description.strip():
            raise Invalid("a promotion needs a description")
        check_offer(percent_bp, amount_off)
        _check_window(starts_at, ends_at)
        if len(set(skus)) != len(skus):
            raise Invalid("each SKU may be listed once")
        start = iso(starts_at)
        assert start is not None
        promotion = cls(promotion_id)
        promotion.record(
            PromotionCreated(
                promotion_id,
                description,
                percent_bp,
                amount_off,
                tuple(sorted(skus)),
                start,
                iso(ends_at),
            )
        )
        return promotion

    def end(self) -> None:
        if not self.ended:
            self.record(PromotionEnded(self.id))

    def apply(self, event: Event) -> None:
        match event:
            case PromotionCreated():
                self.created = event
            case PromotionEnded():
                self.ended = True
            case _:
                super().apply(event)


class Coupon(Aggregate):
    """A code for a discount on the order, usable `usage_limit` times within its window."""

    stream_type = "coupon"

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.terms: CouponCreated | None = None
        self.disabled = False
        self.redeemed: set[str] = set()  # the orders holding a use

    @staticmethod
    def normalise(code: str) -> str:
        """Codes are case-insensitive: stored and looked up upper case."""
        return code.strip().upper()

    @classmethod
    def create(
        cls,
        code: str,
        description: str,
        *,
        usage_limit: int,
        percent_bp: int,
        amount_off: Money | None,
        starts_at: datetime | None,
        ends_at: datetime | None,
        min_subtotal: Money | None,
    ) -> Coupon:
        code = cls.normalise(code)
        if not code:
            raise Invalid("a coupon needs a code")
        if not description.strip():
            raise Invalid("a coupon needs a description")
        if usage_limit < 1:
            raise Invalid(f"a coupon's usage limit is at least 1, got {usage_limit}")
        check_offer(percent_bp, amount_off)
        _check_window(starts_at, ends_at)
        if min_subtotal is not None and min_subtotal.amount < 0:
            raise Invalid("a minimum subtotal cannot be negative")
        coupon = cls(code)
        coupon.record(
            CouponCreated(
                code,
                description,
                percent_bp,
                amount_off,
                usage_limit,
                iso(starts_at),
                iso(ends_at),
                min_subtotal,
            )
        )
        return coupon

    @property
    def uses(self) -> int:
        return len(self.redeemed)

    def offer(self, now: datetime, order_id: str | None = None) -> CouponOffer:
        """What the coupon takes off an order placed `now`; refuses (DomainError) a coupon
        that cannot be used now. An order already holding a use may use it again."""
        terms = self.terms
        assert terms is not None, "only a created coupon is loaded"
        if self.disabled:
            raise DomainError(f"coupon {self.id} was disabled", code="coupon_disabled")
        starts_at, ends_at = parse_time(terms.starts_at), parse_time(terms.ends_at)
        if starts_at is not None and now < starts_at:
            raise DomainError(f"coupon {self.id} is not valid yet", code="coupon_not_started")
        if ends_at is not None and now >= ends_at:
            raise DomainError(f"coupon {self.id} has expired", code="coupon_expired")
        if order_id not in self.redeemed and self.uses >= terms.usage_limit:
            raise DomainError(
                f"coupon {self.id} was used {terms.usage_limit} times, its limit",
                code="coupon_exhausted",
            )
        offer = Offer(terms.percent_bp, terms.amount_off)
        return CouponOffer(self.id, terms.description, offer, terms.min_subtotal)

    def redeem(self, order_id: str, now: datetime) -> CouponOffer:
        """Count one use for `order_id` (once per order) and say what it takes off."""
        offer = self.offer(now, order_id)
        if order_id not in self.redeemed:
            self.record(CouponRedeemed(self.id, order_id))
        return offer

    def release(self, order_id: str) -> None:
        if order_id in self.redeemed:
            self.record(CouponRedemptionReleased(self.id, order_id))

    def disable(self) -> None:
        if not self.disabled:
            self.record(CouponDisabled(self.id))

    def apply(self, event: Event) -> None:
        match event:
            case CouponCreated():
                self.terms = event
            case CouponDisabled():
                self.disabled = True
            case CouponRedeemed(order_id=order_id):
                self.redeemed.add(order_id)
            case CouponRedemptionReleased(order_id=order_id):
                self.redeemed.discard(order_id)
            case _:
                super().apply(event)

    # A busy coupon's stream grows by one event per order: snapshots keep loading it short.
    def snapshot_state(self) -> dict[str, Any]:
        assert self.terms is not None
        return {
            "terms": to_data(self.terms),
            "disabled": self.disabled,
            "redeemed": sorted(self.redeemed),
        }

    @classmethod
    def from_snapshot(cls, aggregate_id: str, version: int, state: dict[str, Any]) -> Self:
        coupon = cls(aggregate_id)
        coupon.version = version
        coupon.terms = from_data(CouponCreated, state["terms"])
        coupon.disabled = state["disabled"]
        coupon.redeemed = set(state["redeemed"])
        return coupon
