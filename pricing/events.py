"""Events of the pricing context.

Streams: `price_list-<CURRENCY>` (one per currency), `tax_rate-<COUNTRY>`,
`promotion-<id>` and `coupon-<CODE>`. Times are ISO 8601 strings in UTC (the codec keeps
messages to JSON's values); amounts are Money in minor units.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernel.messages import Event
from kernel.money import Money


@dataclass(frozen=True, slots=True)
class ListPriceSet(Event):
    """In `currency`, `sku` sells at `price` (instead of its base price)."""

    currency: str
    sku: str
    price: Money


@dataclass(frozen=True, slots=True)
class ListPriceRemoved(Event):
    currency: str
    sku: str


@dataclass(frozen=True, slots=True)
class TaxRateSet(Event):
    """Orders shipping to `country` pay `rate_bp` (basis points: 1900 = 19 %) on their goods
    and shipping; `prices_include_tax` says the storefront shows prices there with tax."""

    country: str
    rate_bp: int
    prices_include_tax: bool


@dataclass(frozen=True, slots=True)
class TaxRateRemoved(Event):
    country: str


@dataclass(frozen=True, slots=True)
class PromotionCreated(Event):
    """An automatic discount: `percent_bp` off, or `amount_off` (per unit on a product
    promotion, once on an order promotion); on the `skus` listed, or (none) on the order;
    from `starts_at` until `ends_at` (None: until ended)."""

    promotion_id: str
    description: str
    percent_bp: int
    amount_off: Money | None
    skus: tuple[str, ...]
    starts_at: str
    ends_at: str | None


@dataclass(frozen=True, slots=True)
class PromotionEnded(Event):
    promotion_id: str


@dataclass(frozen=True, slots=True)
class CouponCreated(Event):
    """A code (upper case) the customer gives for `percent_bp` or `amount_off` off the
    order, valid from `starts_at` until `ends_at` (None: no bound), at most `usage_limit`
    orders, for a subtotal of at least `min_subtotal` (None: any)."""

    code: str
    description: str
    percent_bp: int
    amount_off: Money | None
    usage_limit: int
    starts_at: str | None
    ends_at: str | None
    min_subtotal: Money | None


@dataclass(frozen=True, slots=True)
class CouponDisabled(Event):
    code: str


@dataclass(frozen=True, slots=True)
class CouponRedeemed(Event):
    """`order_id` was placed with the coupon: one use of its limit."""

    code: str
    order_id: str


@dataclass(frozen=True, slots=True)
class CouponRedemptionReleased(Event):
    """The order that redeemed the coupon was cancelled: its use is given back."""

    code: str
    order_id: str


EVENTS: tuple[type[Event], ...] = (
    ListPriceSet,
    ListPriceRemoved,
    TaxRateSet,
    TaxRateRemoved,
    PromotionCreated,
    PromotionEnded,
    CouponCreated,
    CouponDisabled,
    CouponRedeemed,
    CouponRedemptionReleased,
)
