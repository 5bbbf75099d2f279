"""Commands of the orders context."""

from __future__ import annotations

from dataclasses import dataclass

from kernel.messages import Command
from orders.events import Address, CancelledBy


@dataclass(frozen=True, slots=True)
class OrderLineRequest:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class RegisterCustomer(Command):
    """`customer_id` must be `domain.customer_id_for(email)`: that keeps emails unique."""

    customer_id: str
    email: str
    name: str


@dataclass(frozen=True, slots=True)
class ForgetCustomer(Command):
    """Erase the customer's personal data (GDPR art. 17): their key is destroyed, so every
    sealed copy of it reads as erased; their orders stay, for the books."""

    customer_id: str


@dataclass(frozen=True, slots=True)
class PlaceOrder(Command):
    order_id: str
    customer_id: str
    lines: tuple[OrderLineRequest, ...]
    shipping_address: Address
    payment_token: str


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
    order_id: str
    tracking_number: str
