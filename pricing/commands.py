"""Commands of the pricing context (the operators' and the saga's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kernel.messages import Command
from kernel.money import Money


@dataclass(frozen=True, slots=True)
class SetListPrice(Command):
    """Sell `sku` at `price` in `currency` (price.currency), instead of its base price."""

    currency: str
    sku: str
    price: Money


@dataclass(frozen=True, slots=True)
class RemoveListPrice(Command):
    currency: str
    sku: str


@dataclass(frozen=True, slots=True)
class SetTaxRate(Command):
    country: str  # ISO 3166-1 alpha-2
    rate_bp: int  # basis points: 1900 = 19 %
    prices_include_tax: bool


@dataclass(frozen=True, slots=True)
class RemoveTaxRate(Command):
    """The country's orders go untaxed from now on."""

    country: str


@dataclass(frozen=True, slots=True)
class CreatePromotion(Command):
    """Exactly one of `percent_bp` (> 0) and `amount_off`; no `skus`: an order promotion."""

    promotion_id: str
    description: str
    starts_at: datetime
    ends_at: datetime | None = None
    percent_bp: int = 0
    amount_off: Money | None = None
    skus: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EndPromotion(Command):
    promotion_id: str


@dataclass(frozen=True, slots=True)
class CreateCoupon(Command):
    """Exactly one of `percent_bp` (> 0) and `amount_off`; the code is case-insensitive."""

    code: str
    description: str
    usage_limit: int
    percent_bp: int = 0
    amount_off: Money | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    min_subtotal: Money | None = None


@dataclass(frozen=True, slots=True)
class DisableCoupon(Command):
    code: str


@dataclass(frozen=True, slots=True)
class ReleaseCouponRedemption(Command):
    """Give back the use an order made of a coupon (the saga sends it when an order that
    redeemed one is cancelled); releasing one never made, or twice, changes nothing."""

    code: str
    order_id: str
