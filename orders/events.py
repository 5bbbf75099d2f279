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
    """Carries everything readers need (names, prices, totals): no lookups later.

    v2: the shipping address is stored sealed with the customer's key (v1: in the clear).
    """

    schema_version: ClassVar[int] = 2
    personal_fields: ClassVar[PersonalFields] = PersonalFields("customer_id", ("shipping_address",))

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
    CustomerForgotten,
    OrderPlaced,
    OrderConfirmed,
    OrderCancelled,
    OrderShipped,
)


def _unchanged(data: dict[str, Any]) -> dict[str, Any]:
    return data


# v1 -> v2 sealed the personal fields. Upcasters see payloads opened, so a v1 payload (its
# fields in the clear) already has the v2 shape; migration 0013 sealed the v1 events.
UPCASTERS = (
    ("CustomerRegistered", 1, _unchanged),
    ("OrderPlaced", 1, _unchanged),
)
