"""Carts: what a shopper gathers before placing an order.

An anonymous cart has a random id, its only key: whoever holds the id may use it. A
signed-in customer's cart has an id derived from theirs (`customer_cart_id`), answers
only them, and is used again after each checkout. A cart untouched for longer than its
time to live is emptied (CartExpired) by the next command on it, before that command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Self

from kernel.aggregate import Aggregate
from kernel.errors import DomainError, Invalid, NotFound
from kernel.messages import Event
from kernel.money import Money
from orders.commands import OrderLineRequest, customer_cart_id
from orders.events import (
    CartCheckedOut,
    CartExpired,
    CartItemAdded,
    CartItemQuantityChanged,
    CartItemRemoved,
    CartLine,
    CartMergedInto,
    CartsMerged,
    CartStarted,
    CouponApplied,
    CouponRemoved,
)
from orders.ports import CatalogEntry

MAX_LINES = 50  # as many lines as an order may have (PlaceOrderSchema)
MAX_UNITS = 1000  # per line, as an order line's most


def normalise_coupon(code: str) -> str:
    return code.strip().upper()


@dataclass(frozen=True, slots=True)
class Touch:
    """When a command acts (`now`) and how long a cart may lie untouched (`ttl`)."""

    now: datetime
    ttl: timedelta

    @property
    def at(self) -> str:
        return self.now.isoformat()


class Cart(Aggregate):
    """Lines (one per SKU) and at most one coupon; `closed` once merged into another cart.

    Every command method first checks the caller may use the cart (`customer_id`: None
    for an anonymous caller) and empties a cart that expired, then decides.
    """

    stream_type = "cart"

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.started = False
        self.customer_id: str | None = None
        self.lines: dict[str, CartLine] = {}
        self.coupon_code: str | None = None
        self.closed_into: str | None = None
        self.touched_at: datetime | None = None

    # --- starting and using -----------------------------------------------------------

    def start(self, customer_id: str | None, touch: Touch) -> None:
        """Start the cart; starting a customer's cart that exists changes nothing."""
        if self.started:
            if customer_id is not None and customer_id == self.customer_id:
                return
            raise DomainError(f"cart {self.id} exists already", code="cart_exists")
        self.record(CartStarted(self.id, customer_id, touch.at))

    def use(self, customer_id: str | None, touch: Touch) -> None:
        """Let `customer_id` use the cart, or raise NotFound (the same answer as for no cart,
        so no one learns of others' carts); a customer's own cart starts on first use, and
        an expired cart is emptied first."""
        if not self.started:
            if customer_id is None or customer_cart_id(customer_id) != self.id:
                raise NotFound(f"cart {self.id} does not exist")
            self.start(customer_id, touch)
            return
        if self.customer_id is not None and customer_id != self.customer_id:
            raise NotFound(f"cart {self.id} does not exist")
        if self.closed_into is not None:
            raise NotFound(f"cart {self.id} was merged into another and is closed")
        self._expire_if_idle(touch)

    def _expire_if_idle(self, touch: Touch) -> None:
        # Even an empty cart: its read model copy expired, and learns again whose it is.
        if self.touched_at is not None and touch.now - self.touched_at > touch.ttl:
            self.record(CartExpired(self.id, touch.at, self.customer_id))

    # --- lines -----------------------------------------------------------------------

    def add_item(
        self, sku: str, quantity: int, catalog: Mapping[str, CatalogEntry], touch: Touch
    ) -> None:
        _check_quantity(quantity, least=1)
        entry = catalog.get(sku)
        if entry is None:
            raise DomainError(f"unknown SKU: {sku}", code="unknown_sku")
        line = self.lines.get(sku)
        if line is None and len(self.lines) >= MAX_LINES:
            raise DomainError(f"a cart holds at most {MAX_LINES} lines", code="cart_full")
        held = line.quantity if line else 0
        if held + quantity > MAX_UNITS:
            raise DomainError(
                f"a line holds at most {MAX_UNITS} units; {held} are in the cart",
                code="too_many_units",
            )
        currencies = {other.unit_price.currency for other in self.lines.values() if other != line}
        if currencies and entry.unit_price.currency not in currencies:
            raise DomainError(
                f"the cart is in {', '.join(sorted(currencies))}; {sku} is priced in"
                f" {entry.unit_price.currency}",
                code="mixed_currency",
            )
        self.record(CartItemAdded(self.id, sku, entry.name, quantity, entry.unit_price, touch.at))

    def change_quantity(self, sku: str, quantity: int, touch: Touch) -> None:
        """Set the line's quantity; 0 removes it."""
        _check_quantity(quantity, least=0)
        line = self._line(sku)
        if quantity == 0:
            self.record(CartItemRemoved(self.id, sku, touch.at))
        elif quantity != line.quantity:
            self.record(CartItemQuantityChanged(self.id, sku, quantity, touch.at))

    def remove_item(self, sku: str, touch: Touch) -> None:
        self._line(sku)
        self.record(CartItemRemoved(self.id, sku, touch.at))

    def _line(self, sku: str) -> CartLine:
        line = self.lines.get(sku)
        if line is None:
            raise DomainError(f"{sku} is not in the cart", code="not_in_cart")
        return line

    # --- the coupon ------------------------------------------------------------------

    def apply_coupon(self, code: str, touch: Touch) -> None:
        """One coupon at a time: a second replaces the first; the same again changes
        nothing."""
        normalised = normalise_coupon(code)
        if not normalised:
            raise Invalid("a coupon code must not be blank")
        if normalised != self.coupon_code:
            self.record(CouponApplied(self.id, normalised, touch.at))

    def remove_coupon(self, touch: Touch) -> None:
        if self.coupon_code is not None:
            self.record(CouponRemoved(self.id, touch.at))

    # --- merging and checking out ------------------------------------------------------

    def merge(self, anonymous: Cart, touch: Touch) -> None:
        """Take in the anonymous cart's lines (quantities adding up, to the cap), and its
        coupon if this cart has none; close the anonymous cart. Merging a cart merged
        here already changes nothing."""
        if anonymous.id == self.id:
            raise Invalid("a cart cannot be merged into itself")
        if anonymous.closed_into == self.id:
            return
        if anonymous.customer_id is not None:  # a customer's cart is never anyone's to merge
            raise NotFound(f"cart {anonymous.id} does not exist")
        lines = tuple(anonymous.lines.values())
        room = MAX_LINES - len(self.lines)
        new = [line for line in lines if line.sku not in self.lines]
        if len(new) > room:
            raise DomainError(
                f"together the carts would hold more than {MAX_LINES} lines", code="cart_full"
            )
        over = [
            line.sku
            for line in lines
            if line.sku in self.lines and self.lines[line.sku].quantity + line.quantity > MAX_UNITS
        ]
        if over:
            raise DomainError(
                f"together the carts would hold more than {MAX_UNITS} units of {', '.join(over)}",
                code="too_many_units",
            )
        coupon = anonymous.coupon_code if self.coupon_code is None else None
        self.record(CartsMerged(self.id, anonymous.id, lines, coupon, touch.at))
        anonymous.record(CartMergedInto(anonymous.id, self.id, touch.at))

    def order_lines(self) -> tuple[OrderLineRequest, ...]:
        """The cart as an order's lines; refuses an empty cart."""
        if not self.lines:
            raise DomainError(f"cart {self.id} is empty", code="cart_empty")
        return tuple(OrderLineRequest(line.sku, line.quantity) for line in self.lines.values())

    def check_out(self, order_id: str, touch: Touch) -> None:
        """Record that the cart became `order_id`: it is empty again (and may be filled)."""
        self.order_lines()
        self.record(CartCheckedOut(self.id, order_id, touch.at))

    # --- state ---------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        match event:
            case CartStarted(customer_id=customer_id):
                self.started, self.customer_id = True, customer_id
            case CartItemAdded(sku=sku, name=name, quantity=quantity, unit_price=price):
                held = self.lines[sku].quantity if sku in self.lines else 0
                self.lines[sku] = CartLine(sku, name, held + quantity, price)
            case CartItemQuantityChanged(sku=sku, quantity=quantity):
                self.lines[sku] = replace(self.lines[sku], quantity=quantity)
            case CartItemRemoved(sku=sku):
                self.lines.pop(sku, None)
            case CouponApplied(code=code):
                self.coupon_code = code
            case CouponRemoved():
                self.coupon_code = None
            case CartsMerged(lines=lines, coupon_code=coupon):
                self.lines = merged_lines(self.lines, lines)
                self.coupon_code = self.coupon_code or coupon
            case CartMergedInto(into_cart_id=into):
                self.closed_into = into
            case CartCheckedOut() | CartExpired():
                self.lines, self.coupon_code = {}, None
            case _:
                super().apply(event)
        self.touched_at = datetime.fromisoformat(event.at)  # type: ignore[attr-defined]

    def snapshot_state(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "customer_id": self.customer_id,
            "lines": [
                [
                    line.sku,
                    line.name,
                    line.quantity,
                    line.unit_price.amount,
                    line.unit_price.currency,
                ]
                for line in self.lines.values()
            ],
            "coupon_code": self.coupon_code,
            "closed_into": self.closed_into,
            "touched_at": None if self.touched_at is None else self.touched_at.isoformat(),
        }

    @classmethod
    def from_snapshot(cls, aggregate_id: str, version: int, state: dict[str, Any]) -> Self:
        cart = cls(aggregate_id)
        cart.version = version
        cart.started, cart.customer_id = state["started"], state["customer_id"]
        cart.lines = {
            sku: CartLine(sku, name, quantity, Money(amount, currency))
            for sku, name, quantity, amount, currency in state["lines"]
        }
        cart.coupon_code, cart.closed_into = state["coupon_code"], state["closed_into"]
        touched = state["touched_at"]
        cart.touched_at = None if touched is None else datetime.fromisoformat(touched)
        return cart


def merged_lines(
    lines: Mapping[str, CartLine], incoming: tuple[CartLine, ...]
) -> dict[str, CartLine]:
    """`lines` with `incoming` added: quantities of a SKU in both add up, and the line keeps
    the name and price its own cart saw."""
    merged = dict(lines)
    for line in incoming:
        held = merged.get(line.sku)
        merged[line.sku] = (
            line if held is None else replace(held, quantity=held.quantity + line.quantity)
        )
    return merged


def _check_quantity(quantity: int, *, least: int) -> None:
    if isinstance(quantity, bool) or not least <= quantity <= MAX_UNITS:
        raise Invalid(f"the quantity must be from {least} to {MAX_UNITS}")
