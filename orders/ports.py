"""What the orders context needs from elsewhere, as ports that `config` wires."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from kernel.money import Money
from kernel.unit_of_work import UnitOfWork
from orders.events import Discount, PricedLine, TaxLine


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    sku: str
    name: str
    unit_price: Money


class ProductCatalog(Protocol):
    """Names and current prices of products, as the write side knows them.

    Contract: read inside the placing command's transaction; returns an entry
    for every known SKU among `skus` and leaves unknown SKUs out. Never raises
    for an unknown SKU.
    """

    def describe(self, uow: UnitOfWork, skus: Collection[str]) -> Mapping[str, CatalogEntry]: ...


class PaymentLedger(Protocol):
    """Whether an order's payment was refunded, as the payments context knows it.

    Contract: read inside the shipping command's transaction, holding the payment's
    stream lock until it ends, so a refund and a shipment of one order are never each
    decided on the other not having happened.
    """

    def refunded(self, uow: UnitOfWork, order_id: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class CatalogLine:
    entry: CatalogEntry
    quantity: int


@dataclass(frozen=True, slots=True)
class PricingRequest:
    """What an order (or a cart) asks the pricing context: its lines at the catalog's
    prices, where it ships to, and the coupon the customer gave, if any."""

    customer_id: str | None
    lines: tuple[CatalogLine, ...]
    destination: str  # ISO 3166-1 alpha-2 country the order ships to ("" if not known yet)
    coupon_code: str | None = None
    currency: str | None = None  # None: the currency of the lines' catalog prices


@dataclass(frozen=True, slots=True)
class PricedOrder:
    """The pricing context's answer: every figure OrderPlaced carries."""

    lines: tuple[PricedLine, ...]
    subtotal: Money
    discounts: tuple[Discount, ...]
    discount_total: Money
    taxes: tuple[TaxLine, ...]
    tax_total: Money
    shipping: Money
    total: Money
    prices_include_tax: bool
    coupon_code: str | None


class Pricing(Protocol):
    """Prices as the pricing context decides them: promotions running now, the coupon,
    the destination's tax and shipping.

    Contract: `quote` reads only (a cart shows it; nothing is redeemed) and refuses a
    coupon that cannot apply now; `redeem` prices and redeems the coupon inside the placing
    command's transaction, so an order is placed if and only if its coupon use counts.
    Both raise DomainError (codes: coupon_unknown, coupon_expired, coupon_exhausted,
    coupon_not_applicable, mixed_currency, ...) for what the caller must be told.
    """

    def quote(self, uow: UnitOfWork, request: PricingRequest) -> PricedOrder: ...

    def redeem(self, uow: UnitOfWork, order_id: str, request: PricingRequest) -> PricedOrder: ...
