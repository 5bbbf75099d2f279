"""The pricing engine: a pure function from lines at unit prices, the promotions in
force, the coupon, the destination's tax rate and now to every figure of a priced order.

The stacking rule (docs/DESIGN.md, "Pricing"):
1. Each line gets at most one product promotion: the one taking most off it.
2. On what is left, at most one automatic order promotion (the best) and then the
   coupon, on what is left after that; each is capped at what is left, so nothing
   goes negative. Both are shared out over the lines pro rata (largest remainder).
3. Shipping is a flat fee below a subtotal (after discounts) and free from it.
4. Tax is the destination's rate on the goods after discounts plus shipping, rounded
   once for the order and shared out over the lines and the shipping.
Every computed amount is rounded by the currency's rule (kernel.money.round_minor).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from kernel.errors import DomainError, Invalid
from kernel.money import Money, allocate, fraction_of, round_minor

FULL_BP = 10_000  # 100 % in basis points


@dataclass(frozen=True, slots=True)
class LineToPrice:
    sku: str
    name: str
    quantity: int
    unit_price: Money  # in the order's currency (a list price, or the base price)


@dataclass(frozen=True, slots=True)
class Offer:
    """What a promotion or a coupon takes off: `percent_bp` of the amount, or
    `amount_off` (per unit when `per_unit`); the other one is 0 / None."""

    percent_bp: int = 0
    amount_off: Money | None = None

    def off(self, amount: Money, units: int = 1) -> Money:
        """What this takes off `amount` (never more than it; nothing in another currency)."""
        if self.amount_off is not None:
            if self.amount_off.currency != amount.currency:
                return Money.zero(amount.currency)
            taken = self.amount_off.amount * units
        else:
            taken = fraction_of(amount, self.percent_bp).amount
        return Money(max(0, min(taken, amount.amount)), amount.currency)


@dataclass(frozen=True, slots=True)
class Promotion:
    """An automatic discount on the `skus` listed (per unit, for an amount), or on the
    order when none are."""

    promotion_id: str
    description: str
    offer: Offer
    skus: frozenset[str]
    starts_at: datetime
    ends_at: datetime | None = None
    ended: bool = False

    @property
    def source(self) -> str:
        return f"promotion:{self.promotion_id}"

    @property
    def on_products(self) -> bool:
        return bool(self.skus)

    def in_force(self, now: datetime) -> bool:
        if self.ended or now < self.starts_at:
            return False
        return self.ends_at is None or now < self.ends_at


@dataclass(frozen=True, slots=True)
class CouponOffer:
    """A coupon the customer gave, known to be usable now (the Coupon aggregate decides
    that): what it takes off the order, and the subtotal it needs."""

    code: str
    description: str
    offer: Offer
    min_subtotal: Money | None = None

    @property
    def source(self) -> str:
        return f"coupon:{self.code}"


@dataclass(frozen=True, slots=True)
class TaxRate:
    country: str
    rate_bp: int
    prices_include_tax: bool


@dataclass(frozen=True, slots=True)
class ShippingPolicy:
    """A flat fee (minor units of the order's currency) below a subtotal after
    discounts, and free from it: `by_currency` (currency -> (fee, free from)) where a
    currency has its own figures, `fee` and `free_from` for any other. The fee is rounded
    to the currency's step (0.05 CHF)."""

    fee: int = 499
    free_from: int = 5000
    by_currency: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def charge(self, goods: Money) -> Money:
        fee, free_from = self.by_currency.get(goods.currency, (self.fee, self.free_from))
        owed = 0 if goods.amount >= free_from else round_minor(goods.currency, fee)
        return Money(owed, goods.currency)


DEFAULT_SHIPPING = ShippingPolicy()  # 4.99 below 50.00 of goods, free from it


@dataclass(frozen=True, slots=True)
class PricedItem:
    sku: str
    name: str
    quantity: int
    unit_price: Money
    line_total: Money  # unit_price x quantity
    discount: Money  # its product promotion's, plus its share of the order's discounts
    tax: Money  # its share of the tax
    total: Money  # line_total - discount + tax


@dataclass(frozen=True, slots=True)
class AppliedDiscount:
    source: str  # promotion:<id> or coupon:<CODE>
    description: str
    amount: Money


@dataclass(frozen=True, slots=True)
class AppliedTax:
    country: str
    rate_bp: int
    taxable: Money
    amount: Money


@dataclass(frozen=True, slots=True)
class Breakdown:
    """total = subtotal - discount_total + tax_total + shipping; the lines' discounts and
    taxes add up to discount_total and tax_total less the shipping's tax."""

    lines: tuple[PricedItem, ...]
    subtotal: Money
    discounts: tuple[AppliedDiscount, ...]
    discount_total: Money
    taxes: tuple[AppliedTax, ...]
    tax_total: Money
    shipping: Money
    shipping_tax: Money
    total: Money
    prices_include_tax: bool
    coupon_code: str | None


def price(
    lines: Sequence[LineToPrice],
    *,
    promotions: Iterable[Promotion] = (),
    coupon: CouponOffer | None = None,
    tax: TaxRate | None = None,
    now: datetime,
    shipping: ShippingPolicy | None = None,
) -> Breakdown:
    """Price `lines` (all in one currency) by the stacking rule; promotions not in force
    at `now` are left out. Raises coupon_not_applicable for a coupon the order does not
    qualify for (below its minimum, or an amount in another currency)."""
    if not lines:
        raise Invalid("an order needs at least one line")
    currencies = sorted({line.unit_price.currency for line in lines})
    if len(currencies) > 1:
        raise DomainError(
            f"all lines must share one currency, got {', '.join(currencies)}",
            code="mixed_currency",
        )
    currency = currencies[0]
    zero = Money.zero(currency)
    running = [p for p in promotions if p.in_force(now)]
    totals = [line.unit_price * line.quantity for line in lines]
    subtotal = sum(totals, zero)

    # 1. At most one product promotion per line: the best for that line.
    line_off: list[Money] = []
    by_source: dict[str, tuple[Promotion, Money]] = {}
    for line, total in zip(lines, totals, strict=True):
        best = _best(
            ((p, p.offer.off(total, line.quantity)) for p in running if line.sku in p.skus),
        )
        line_off.append(zero if best is None else best[1])
        if best is not None:
            promotion, amount = best
            earlier = by_source.get(promotion.source, (promotion, zero))[1]
            by_source[promotion.source] = (promotion, earlier + amount)
    discounts = [
        AppliedDiscount(p.source, p.description, amount) for p, amount in by_source.values()
    ]
    left = [total - off for total, off in zip(totals, line_off, strict=True)]

    # 2. The best order promotion, then the coupon, each on what is left.
    order_level: list[tuple[str, str, Money]] = []
    remaining = sum(left, zero)
    best_order = _best((p, p.offer.off(remaining)) for p in running if not p.on_products)
    if best_order is not None:
        promotion, amount = best_order
        order_level.append((promotion.source, promotion.description, amount))
        remaining -= amount
    if coupon is not None:
        _check_coupon(coupon, subtotal)
        order_level.append((coupon.source, coupon.description, coupon.offer.off(remaining)))
    for source, description, amount in order_level:
        if amount.amount > 0:
            shares = allocate(amount.amount, [part.amount for part in left])
            left = [part - Money(share, currency) for part, share in zip(left, shares, strict=True)]
            line_off = [
                off + Money(share, currency) for off, share in zip(line_off, shares, strict=True)
            ]
            discounts.append(AppliedDiscount(source, description, amount))
    discounts = [discount for discount in discounts if discount.amount.amount > 0]
    discount_total = sum((discount.amount for discount in discounts), zero)
    goods = subtotal - discount_total

    # 3. Shipping, then 4. tax on the goods and the shipping, shared out.
    shipping_fee = (shipping or DEFAULT_SHIPPING).charge(goods)
    taxes: tuple[AppliedTax, ...] = ()
    line_tax = [zero] * len(lines)
    shipping_tax = zero
    if tax is not None:
        taxable = goods + shipping_fee
        amount = fraction_of(taxable, tax.rate_bp)
        taxes = (AppliedTax(tax.country, tax.rate_bp, taxable, amount),)
        *shares, shipping_share = allocate(
            amount.amount, [part.amount for part in left] + [shipping_fee.amount]
        )
        line_tax = [Money(share, currency) for share in shares]
        shipping_tax = Money(shipping_share, currency)
    tax_total = sum((applied.amount for applied in taxes), zero)

    items = tuple(
        PricedItem(
            line.sku,
            line.name,
            line.quantity,
            line.unit_price,
            total,
            off,
            line_tax_,
            net + line_tax_,
        )
        for line, total, off, net, line_tax_ in zip(
            lines, totals, line_off, left, line_tax, strict=True
        )
    )
    return Breakdown(
        lines=items,
        subtotal=subtotal,
        discounts=tuple(discounts),
        discount_total=discount_total,
        taxes=taxes,
        tax_total=tax_total,
        shipping=shipping_fee,
        shipping_tax=shipping_tax,
        total=goods + tax_total + shipping_fee,
        prices_include_tax=tax.prices_include_tax if tax is not None else False,
        coupon_code=coupon.code if coupon is not None else None,
    )


def _best(candidates: Iterable[tuple[Promotion, Money]]) -> tuple[Promotion, Money] | None:
    """The promotion taking most off (the lowest id on a tie: the same answer every
    time); None when none takes anything."""
    ranked = sorted(
        (c for c in candidates if c[1].amount > 0), key=lambda c: (-c[1].amount, c[0].promotion_id)
    )
    return ranked[0] if ranked else None


def _check_coupon(coupon: CouponOffer, subtotal: Money) -> None:
    off = coupon.offer.amount_off
    if off is not None and off.currency != subtotal.currency:
        raise DomainError(
            f"coupon {coupon.code} is for orders in {off.currency}, not {subtotal.currency}",
            code="coupon_not_applicable",
        )
    minimum = coupon.min_subtotal
    if minimum is not None and (
        minimum.currency != subtotal.currency or subtotal.amount < minimum.amount
    ):
        raise DomainError(
            f"coupon {coupon.code} needs a subtotal of at least {minimum}",
            code="coupon_not_applicable",
        )
