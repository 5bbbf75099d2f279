"""Pricing an order (or a cart) at the checkout: the rules in force read in one
statement, the coupon from its stream, the engine for the figures. `redeem` also counts
the coupon's use, in the placing command's transaction (see pricing.domain.Coupon)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from kernel.errors import DomainError, Invalid
from kernel.messages import utc_now
from kernel.money import Money
from kernel.unit_of_work import UnitOfWork
from pricing import rules
from pricing.domain import Coupon
from pricing.engine import (
    DEFAULT_SHIPPING,
    Breakdown,
    CouponOffer,
    LineToPrice,
    ShippingPolicy,
    price,
)


@dataclass(frozen=True, slots=True)
class Item:
    """A line to price: the SKU's name and base price (inventory's), and the quantity."""

    sku: str
    name: str
    quantity: int
    base_price: Money


class Checkout:
    """Prices as they are now: `clock` says when (tests fix it)."""

    def __init__(
        self,
        shipping: ShippingPolicy = DEFAULT_SHIPPING,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.shipping = shipping
        self.clock = clock

    def quote(
        self,
        uow: UnitOfWork,
        items: Sequence[Item],
        destination: str,
        coupon_code: str | None = None,
        currency: str | None = None,
    ) -> Breakdown:
        """The figures, redeeming nothing; refuses a coupon that cannot be used now."""
        return self._priced(uow, items, destination, coupon_code, currency, order_id=None)

    def redeem(
        self,
        uow: UnitOfWork,
        order_id: str,
        items: Sequence[Item],
        destination: str,
        coupon_code: str | None = None,
        currency: str | None = None,
    ) -> Breakdown:
        """The figures, and the coupon's use counted for `order_id` (once per order)."""
        return self._priced(uow, items, destination, coupon_code, currency, order_id=order_id)

    def _priced(
        self,
        uow: UnitOfWork,
        items: Sequence[Item],
        destination: str,
        coupon_code: str | None,
        currency: str | None,
        *,
        order_id: str | None,
    ) -> Breakdown:
        if not items:
            raise Invalid("an order needs at least one line")
        now = self.clock()
        currency = currency or _base_currency(items)
        found = rules.in_force(uow.conn, destination, currency, {i.sku for i in items}, now)
        lines = [
            LineToPrice(item.sku, item.name, item.quantity, _unit_price(item, currency, found))
            for item in items
        ]
        coupon, offer = None, None
        if coupon_code:
            code = Coupon.normalise(coupon_code)
            # Placing locks the coupon's stream until the transaction ends: uses queue up.
            coupon = uow.load(Coupon, code, lock=order_id is not None)
            if coupon is None:
                raise DomainError(f"no coupon has the code {code}", code="coupon_unknown")
            offer = coupon.offer(now, order_id)
        breakdown = price(
            lines,
            promotions=found.promotions,
            coupon=offer,
            tax=found.tax,
            now=now,
            shipping=self.shipping,
        )
        if coupon is not None and order_id is not None:
            _redeemed(uow, coupon, order_id, now)
        return breakdown


def _redeemed(uow: UnitOfWork, coupon: Coupon, order_id: str, now: datetime) -> CouponOffer:
    offer = coupon.redeem(order_id, now)
    uow.save(coupon)
    rules.count_redemptions(uow.conn, coupon.id, coupon.uses)
    return offer


def _base_currency(items: Sequence[Item]) -> str:
    """The order's currency when none is asked for: its lines' base prices'."""
    currencies = sorted({item.base_price.currency for item in items})
    if len(currencies) > 1:
        raise DomainError(
            f"all lines must share one currency, got {', '.join(currencies)}",
            code="mixed_currency",
        )
    return currencies[0]


def _unit_price(item: Item, currency: str, found: rules.Rules) -> Money:
    """The list price in `currency` if there is one, else the base price if it is in
    `currency`; else the SKU is not sold in that currency."""
    listed = found.list_prices.get(item.sku)
    if listed is not None:
        return Money(listed, currency)
    if item.base_price.currency == currency:
        return item.base_price
    raise DomainError(
        f"{item.sku} has no price in {currency} (its price is in {item.base_price.currency})",
        code="not_sold_in_currency",
    )
