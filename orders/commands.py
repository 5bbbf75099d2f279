"""Commands of the orders context."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from kernel.messages import Command
from orders.events import Address, CancelledBy


@dataclass(frozen=True, slots=True)
class OrderLineRequest:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class RegisterCustomer(Command):
    """`customer_id` is a new random id; the email must have no account yet.
    `password_hash` is the argon2 hash of the password, made before dispatching (hashing
    is slow on purpose, and nothing slow runs inside the command's transaction)."""

    customer_id: str
    email: str
    name: str
    password_hash: str = field(repr=False)  # kept out of logs and error messages


@dataclass(frozen=True, slots=True)
class ForgetCustomer(Command):
    """Erase the customer's personal data (GDPR art. 17): their key is destroyed, so every
    sealed copy of it reads as erased; their orders stay, for the books."""

    customer_id: str


@dataclass(frozen=True, slots=True)
class PlaceOrder(Command):
    """Price the lines as the pricing context says now (promotions, the coupon, the
    destination's tax), redeem the coupon and place the order, in one transaction."""

    order_id: str
    customer_id: str
    lines: tuple[OrderLineRequest, ...]
    shipping_address: Address
    payment_token: str
    billing_address: Address | None = None  # None: billed where it ships
    coupon_code: str | None = None
    cart_id: str | None = None  # set by the cart's checkout


@dataclass(frozen=True, slots=True)
class ConfirmOrder(Command):
    order_id: str


@dataclass(frozen=True, slots=True)
class CancelOrder(Command):
    order_id: str
    reason: str
    cancelled_by: CancelledBy
    customer_id: str | None = None  # required when a customer cancels: only their own orders


@dataclass(frozen=True, slots=True)
class ShipOrder(Command):
    """Ship everything the order still holds, as one shipment."""

    order_id: str
    tracking_number: str


@dataclass(frozen=True, slots=True)
class ShipOrderLines(Command):
    """Ship some units of a confirmed order; `shipment_id` names the shipment (the same
    id again changes nothing)."""

    order_id: str
    shipment_id: str
    lines: tuple[OrderLineRequest, ...]
    tracking_number: str


@dataclass(frozen=True, slots=True)
class RequestReturn(Command):
    """Announce shipped units coming back; `customer_id` is set when a customer asks (only
    for their own orders)."""

    order_id: str
    return_id: str
    lines: tuple[OrderLineRequest, ...]
    reason: str
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReceiveReturn(Command):
    order_id: str
    return_id: str


@dataclass(frozen=True, slots=True)
class InspectReturn(Command):
    """Accept `accepted` units of what came back (restocked and refunded); the rest of the
    return is rejected."""

    order_id: str
    return_id: str
    accepted: tuple[OrderLineRequest, ...]
    note: str = ""


# --- carts ---------------------------------------------------------------------------

_CUSTOMER_CARTS = uuid.UUID("6f1d3c2a-4b5e-4a8f-9c7d-1e2f3a4b5c6d")


def customer_cart_id(customer_id: str) -> str:
    """The id of a signed-in customer's cart: always the same one, so no lookup is needed
    (the read side finds it the same way)."""
    return str(uuid.uuid5(_CUSTOMER_CARTS, customer_id))


# `customer_id` is the caller: None for an anonymous shopper, who may use an anonymous cart
# by its id alone; a customer's cart answers only its customer (anyone else: not found).


@dataclass(frozen=True, slots=True)
class StartCart(Command):
    """Start an anonymous cart under a new random id, with `lines` in it already (a
    storefront's first "add to cart" is one request); a customer's starts by being used."""

    cart_id: str
    lines: tuple[OrderLineRequest, ...] = ()


@dataclass(frozen=True, slots=True)
class AddItemToCart(Command):
    cart_id: str
    sku: str
    quantity: int
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeCartItemQuantity(Command):
    """Set a line's quantity; 0 removes the line."""

    cart_id: str
    sku: str
    quantity: int
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class RemoveItemFromCart(Command):
    cart_id: str
    sku: str
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyCoupon(Command):
    """Give the cart a coupon code (replacing any other); the pricing context judges it
    at checkout."""

    cart_id: str
    code: str
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class RemoveCoupon(Command):
    cart_id: str
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class MergeCarts(Command):
    """Move the anonymous cart `from_cart_id`'s lines into the customer's cart `cart_id`,
    and close the anonymous one."""

    cart_id: str
    from_cart_id: str
    customer_id: str


@dataclass(frozen=True, slots=True)
class CheckOutCart(Command):
    """Place the customer's cart as the order `order_id`, in one transaction: the order is
    placed if and only if the cart is checked out (and emptied). With `merge_from`, the
    anonymous cart of that id is merged into it first, in the same transaction."""

    cart_id: str
    order_id: str
    customer_id: str
    shipping_address: Address
    payment_token: str
    billing_address: Address | None = None
    merge_from: str | None = None
