"""Events of the orders context: customers registering and the order lifecycle."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kernel.messages import Event
from kernel.money import Money


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str  # ISO 3166-1 alpha-2


@dataclass(frozen=True, slots=True)
class PricedLine:
    sku: str
    name: str
    quantity: int
    unit_price: Money
    line_total: Money


class CancelledBy(StrEnum):
    CUSTOMER = "customer"
    SYSTEM = "system"
    ADMIN = "admin"  # an operator, from the admin API or the dashboard


@dataclass(frozen=True, slots=True)
class CustomerRegistered(Event):
    customer_id: str
    email: str
    name: str


@dataclass(frozen=True, slots=True)
class OrderPlaced(Event):
    """Carries everything readers need (names, prices, totals): no lookups later."""

    order_id: str
    customer_id: str
    lines: tuple[PricedLine, ...]
    subtotal: Money
    shipping: Money
    total: Money
    shipping_address: Address
    payment_token: str


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
class OrderShipped(Event):
    order_id: str
    tracking_number: str


EVENTS: tuple[type[Event], ...] = (
    CustomerRegistered,
    OrderPlaced,
    OrderConfirmed,
    OrderCancelled,
    OrderShipped,
)
