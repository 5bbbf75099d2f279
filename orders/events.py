"""Events of the orders context: customers registering and the order lifecycle."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from kernel.messages import Event
from kernel.money import Money
from kernel.personal_data import PersonalFields


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str  # ISO 3166-1 alpha-2
    line2: str = ""
    region: str = ""  # state, province or county, where the country uses one


@dataclass(frozen=True, slots=True)
class PricedLine:
    """One line as it was charged: `line_total` is unit price x quantity, `discount` the
    line's share of every discount (its own promotion's and the order's, allocated),
    `tax` the tax on what is left, and `total` = line_total - discount + tax."""

    sku: str
    name: str
    quantity: int
    unit_price: Money
    line_total: Money
    discount: Money
    tax: Money
    total: Money


@dataclass(frozen=True, slots=True)
class Discount:
    """One discount that applied, by its source: `promotion:<id>` or `coupon:<CODE>`."""

    source: str
    description: str
    amount: Money


@dataclass(frozen=True, slots=True)
class TaxLine:
    """Tax at one rate (basis points: 1900 = 19 %) on `taxable`, for the destination."""

    country: str
    rate_bp: int
    taxable: Money
    amount: Money


@dataclass(frozen=True, slots=True)
class ItemLine:
    """Units of one SKU in a shipment, a return or a cart."""

    sku: str
    quantity: int


class CancelledBy(StrEnum):
    CUSTOMER = "customer"
    SYSTEM = "system"
    ADMIN = "admin"  # an operator, from the admin API or the dashboard


@dataclass(frozen=True, slots=True)
class CustomerRegistered(Event):
    """v2: email and name are stored sealed with the customer's key (v1: in the clear)."""

    schema_version: ClassVar[int] = 2
    personal_fields: ClassVar[PersonalFields] = PersonalFields("customer_id", ("email", "name"))

    customer_id: str
    email: str
    name: str


@dataclass(frozen=True, slots=True)
class CustomerForgotten(Event):
    """The customer's key was destroyed: their personal data reads as erased everywhere."""

    customer_id: str


@dataclass(frozen=True, slots=True)
class OrderPlaced(Event):
    """Carries everything readers need (names, prices, the whole price breakdown): no
    lookups and no recomputing later. total = subtotal - discount_total + tax_total +
    shipping; `taxes` include the shipping's tax. With `prices_include_tax` the storefront
    showed prices with tax (the destination's custom); the figures are the same either way.

    v2: the shipping address is stored sealed with the customer's key (v1: in the clear).
    v3: the breakdown (discounts, taxes, per-line shares), the billing address, the coupon
    and the cart; v2 orders read as untaxed and undiscounted, billed where they shipped.
    """

    schema_version: ClassVar[int] = 3
    personal_fields: ClassVar[PersonalFields] = PersonalFields(
        "customer_id", ("shipping_address", "billing_address")
    )

    order_id: str
    customer_id: str
    lines: tuple[PricedLine, ...]
    subtotal: Money
    shipping: Money
    total: Money
    shipping_address: Address
    payment_token: str
    discounts: tuple[Discount, ...]
    discount_total: Money
    taxes: tuple[TaxLine, ...]
    tax_total: Money
    billing_address: Address
    prices_include_tax: bool = False
    coupon_code: str | None = None
    cart_id: str | None = None  # the cart checked out, if the order came from one


@dataclass(frozen=True, slots=True)
class OrderConfirmed(Event):
    order_id: str


@dataclass(frozen=True, slots=True)
class OrderCancelled(Event):
    order_id: str
    reason: str
    cancelled_by: CancelledBy
    previous_status: str  # "pending" or "confirmed"


@dataclass(frozen=True, slots=True)
class ShipmentDispatched(Event):
    """Some units of a confirmed order left with the carrier (a whole order ships as one
    shipment; the last shipment is followed by OrderShipped)."""

    order_id: str
    shipment_id: str
    lines: tuple[ItemLine, ...]
    tracking_number: str


@dataclass(frozen=True, slots=True)
class OrderShipped(Event):
    """Everything the order holds has shipped (with the last shipment's tracking number)."""

    order_id: str
    tracking_number: str


@dataclass(frozen=True, slots=True)
class ReturnRequested(Event):
    """The customer (or an operator for them) announced shipped units coming back."""

    order_id: str
    return_id: str
    lines: tuple[ItemLine, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class ReturnReceived(Event):
    order_id: str
    return_id: str


@dataclass(frozen=True, slots=True)
class ReturnInspected(Event):
    """The warehouse looked at what came back: `accepted` units go back on the shelf and
    `refund` (what they were charged, discounts and tax included; shipping is not
    refunded) goes back to the customer; `rejected` units are neither."""

    order_id: str
    return_id: str
    accepted: tuple[ItemLine, ...]
    rejected: tuple[ItemLine, ...]
    refund: Money
    note: str = ""


EVENTS: tuple[type[Event], ...] = (
    CustomerRegistered,
    CustomerForgotten,
    OrderPlaced,
    OrderConfirmed,
    OrderCancelled,
    ShipmentDispatched,
    OrderShipped,
    ReturnRequested,
    ReturnReceived,
    ReturnInspected,
)


def _unchanged(data: dict[str, Any]) -> dict[str, Any]:
    return data


def _order_placed_v3(data: dict[str, Any]) -> dict[str, Any]:
    """A v2 order had no discounts and no tax, and was billed where it shipped."""
    zero = {"amount": 0, "currency": data["total"]["currency"]}
    lines = [
        {**line, "discount": zero, "tax": zero, "total": line["line_total"]}
        for line in data["lines"]
    ]
    return {
        **data,
        "lines": lines,
        "discounts": [],
        "discount_total": zero,
        "taxes": [],
        "tax_total": zero,
        "billing_address": data["shipping_address"],
    }


# v1 -> v2 sealed the personal fields. Upcasters see payloads opened, so a v1 payload (its
# fields in the clear) already has the v2 shape; migration 0013 sealed the v1 events.
UPCASTERS = (
    ("CustomerRegistered", 1, _unchanged),
    ("OrderPlaced", 1, _unchanged),
    ("OrderPlaced", 2, _order_placed_v3),
)


# --- carts ---------------------------------------------------------------------------
# Every cart event carries `at`, when it happened (ISO 8601, UTC): the cart decides
# whether it expired from its own history, and the read model's keys expire from the same
# instant, so a replay expires them where they expired the first time.


@dataclass(frozen=True, slots=True)
class CartLine:
    """One SKU in a cart, with the name and unit price the shopper saw when adding it."""

    sku: str
    name: str
    quantity: int
    unit_price: Money


@dataclass(frozen=True, slots=True)
class CartStarted(Event):
    """A cart came to be: anonymous (`customer_id` None: its random id is its only key) or
    a signed-in customer's (its id derived from theirs)."""

    cart_id: str
    customer_id: str | None
    at: str


@dataclass(frozen=True, slots=True)
class CartItemAdded(Event):
    """`quantity` more units of the SKU (the line's quantity adds up); `name` and
    `unit_price` are the catalog's when added, and become the line's."""

    cart_id: str
    sku: str
    name: str
    quantity: int
    unit_price: Money
    at: str


@dataclass(frozen=True, slots=True)
class CartItemQuantityChanged(Event):
    cart_id: str
    sku: str
    quantity: int  # the line's new quantity (at least 1: none removes the line)
    at: str


@dataclass(frozen=True, slots=True)
class CartItemRemoved(Event):
    cart_id: str
    sku: str
    at: str


@dataclass(frozen=True, slots=True)
class CouponApplied(Event):
    """The cart's coupon (one at a time: it replaces any other). Checked only at checkout,
    by the pricing context."""

    cart_id: str
    code: str
    at: str


@dataclass(frozen=True, slots=True)
class CouponRemoved(Event):
    cart_id: str
    at: str


@dataclass(frozen=True, slots=True)
class CartsMerged(Event):
    """An anonymous cart's lines went into this one (quantities adding up), with its
    coupon when this cart had none; carried here so readers need not read the other."""

    cart_id: str
    from_cart_id: str
    lines: tuple[CartLine, ...]
    coupon_code: str | None
    at: str


@dataclass(frozen=True, slots=True)
class CartMergedInto(Event):
    """This anonymous cart was merged into a customer's and is closed."""

    cart_id: str
    into_cart_id: str
    at: str


@dataclass(frozen=True, slots=True)
class CartCheckedOut(Event):
    """The cart became the order `order_id` (in the order's own transaction) and is empty
    again."""

    cart_id: str
    order_id: str
    at: str


@dataclass(frozen=True, slots=True)
class CartExpired(Event):
    """The cart was left untouched longer than CART_TTL: it is as new (empty, whose it is
    said again, since the read model's copy expired with it)."""

    cart_id: str
    at: str
    customer_id: str | None = None


CART_EVENTS: tuple[type[Event], ...] = (
    CartStarted,
    CartItemAdded,
    CartItemQuantityChanged,
    CartItemRemoved,
    CouponApplied,
    CouponRemoved,
    CartsMerged,
    CartMergedInto,
    CartCheckedOut,
    CartExpired,
)
EVENTS += CART_EVENTS
