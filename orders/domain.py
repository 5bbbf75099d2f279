"""Customers and orders: the rules of registering, placing and the order lifecycle (the
prices are the pricing context's, through the Pricing port)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

from kernel.aggregate import Aggregate
from kernel.errors import DomainError, Invalid, NotFound
from kernel.messages import Event
from orders.commands import OrderLineRequest
from orders.events import (
    Address,
    CancelledBy,
    CustomerForgotten,
    CustomerRegistered,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderShipped,
)
from orders.ports import CatalogEntry, CatalogLine, PricedOrder


def normalise_email(email: str) -> str:
    return email.strip().lower()


class Customer(Aggregate):
    """A registered customer. Its id is random; that an email is registered once is not
    this aggregate's to know (it sees one customer), but the account's claim on it
    (orders.accounts). It holds no personal data: its events' personal fields are sealed,
    and a command replays them without the key (see kernel.personal_data)."""

    stream_type = "customer"
    snapshot_version = 2  # v1 held the email and name

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.registered = False
        self.forgotten = False

    def register(self, email: str, name: str) -> None:
        if self.registered:
            raise DomainError(f"customer {self.id} is already registered", code="email_taken")
        self.record(CustomerRegistered(self.id, normalise_email(email), name))

    def forget(self) -> bool:
        """Record that the customer's personal data is erased; False if it was already."""
        if self.forgotten:
            return False
        self.record(CustomerForgotten(self.id))
        return True

    def apply(self, event: Event) -> None:
        match event:
            case CustomerRegistered():
                self.registered = True
            case CustomerForgotten():
                self.forgotten = True
            case _:
                super().apply(event)

    def snapshot_state(self) -> dict[str, Any]:
        return {"registered": self.registered, "forgotten": self.forgotten}

    @classmethod
    def from_snapshot(cls, aggregate_id: str, version: int, state: dict[str, Any]) -> Self:
        customer = cls(aggregate_id)
        customer.version = version
        customer.registered, customer.forgotten = state["registered"], state["forgotten"]
        return customer


def catalog_lines(
    requested: Sequence[OrderLineRequest], catalog: Mapping[str, CatalogEntry]
) -> tuple[CatalogLine, ...]:
    """The order's own checks of its lines, before anything prices them: at least one
    line, quantities of at least 1, each SKU once, and every SKU known to the catalog."""
    if not requested:
        raise Invalid("an order needs at least one line")
    if any(line.quantity < 1 for line in requested):
        raise Invalid("quantities must be at least 1")
    skus = [line.sku for line in requested]
    duplicates = sorted({sku for sku in skus if skus.count(sku) > 1})
    if duplicates:
        raise DomainError(
            f"each SKU may appear once, repeated: {', '.join(duplicates)}", code="duplicate_sku"
        )
    unknown = [sku for sku in skus if sku not in catalog]
    if unknown:
        raise DomainError(f"unknown SKU: {', '.join(unknown)}", code="unknown_sku")
    return tuple(CatalogLine(catalog[line.sku], line.quantity) for line in requested)


@dataclass(frozen=True, slots=True)
class Holds:
    """A customer's orders awaiting payment (placed, not confirmed or cancelled) and the
    units those reserve."""

    orders: int
    units: int


@dataclass(frozen=True, slots=True)
class HoldLimits:
    """The most a customer may hold at once: an order whose payment never answers keeps
    its stock until the payment timeout, so unbounded holds let a few accounts empty the
    shelves for everyone."""

    pending_orders: int
    reserved_units: int

    def check(self, held: Holds, units: int) -> None:
        """Refuse one more order of `units` on top of `held`."""
        if units > self.reserved_units:  # never allowed, however long one waits
            raise DomainError(
                f"an order awaiting payment may hold at most {self.reserved_units} units",
                code="order_too_large",
            )
        if held.orders + 1 > self.pending_orders:
            raise DomainError(
                f"{held.orders} orders are awaiting payment; at most {self.pending_orders}"
                " may be at once",
                code="too_many_pending_orders",
            )
        if held.units + units > self.reserved_units:
            raise DomainError(
                f"orders awaiting payment hold {held.units} units; with {units} more that"
                f" would pass the most, {self.reserved_units}",
                code="too_many_reserved_units",
            )


class OrderStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    SHIPPED = "shipped"


class Order(Aggregate):
    """pending -> confirmed -> shipped; pending or confirmed -> cancelled.

    Confirming a confirmed order and cancelling a cancelled one succeed without a
    new event: the saga may deliver the same decision twice. Shipping twice is
    refused, since a second tracking number would contradict the first.
    """

    stream_type = "order"

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.customer_id = ""
        self.status: OrderStatus | None = None

    def place(
        self,
        customer_id: str,
        priced: PricedOrder,
        shipping_address: Address,
        payment_token: str,
        *,
        billing_address: Address | None = None,
        cart_id: str | None = None,
    ) -> None:
        """Record the order as the pricing context priced it (see catalog_lines for the
        order's own checks of its lines, made before pricing)."""
        if self.status is not None:
            raise DomainError(f"order {self.id} exists already", code="order_exists")
        self.record(
            OrderPlaced(
                order_id=self.id,
                customer_id=customer_id,
                lines=priced.lines,
                subtotal=priced.subtotal,
                shipping=priced.shipping,
                total=priced.total,
                shipping_address=shipping_address,
                payment_token=payment_token,
                discounts=priced.discounts,
                discount_total=priced.discount_total,
                taxes=priced.taxes,
                tax_total=priced.tax_total,
                billing_address=billing_address or shipping_address,
                prices_include_tax=priced.prices_include_tax,
                coupon_code=priced.coupon_code,
                cart_id=cart_id,
            )
        )

    def confirm(self) -> None:
        if self.status is OrderStatus.CONFIRMED:
            return
        if self.status is not OrderStatus.PENDING:
            raise DomainError(
                f"order {self.id} is {self.status} and can no longer be confirmed",
                code="order_not_confirmable",
            )
        self.record(OrderConfirmed(self.id))

    def cancel(
        self, reason: str, cancelled_by: CancelledBy, customer_id: str | None = None
    ) -> None:
        if cancelled_by not in tuple(CancelledBy):
            raise Invalid(f"cancelled_by must be one of {', '.join(CancelledBy)}")
        if cancelled_by == CancelledBy.CUSTOMER and customer_id != self.customer_id:
            # The same answer as for an order that does not exist: no one learns of others' orders.
            raise NotFound(f"{self.stream_type} {self.id} does not exist")
        if self.status is OrderStatus.CANCELLED:
            return
        if self.status not in (OrderStatus.PENDING, OrderStatus.CONFIRMED):
            raise DomainError(
                f"order {self.id} is {self.status} and can no longer be cancelled",
                code="order_not_cancellable",
            )
        self.record(OrderCancelled(self.id, reason, cancelled_by, str(self.status)))

    def ship(self, tracking_number: str, *, payment_refunded: bool = False) -> None:
        if self.status is not OrderStatus.CONFIRMED:
            raise DomainError(
                f"order {self.id} is {self.status}; only confirmed orders can be shipped",
                code="order_not_shippable",
            )
        if payment_refunded:  # the saga is cancelling it; goods refunded must not leave
            raise DomainError(
                f"order {self.id} was refunded; it is being cancelled, not shipped",
                code="order_not_shippable",
            )
        self.record(OrderShipped(self.id, tracking_number))

    def apply(self, event: Event) -> None:
        match event:
            case OrderPlaced(customer_id=customer_id):
                self.customer_id = customer_id
                self.status = OrderStatus.PENDING
            case OrderConfirmed():
                self.status = OrderStatus.CONFIRMED
            case OrderCancelled():
                self.status = OrderStatus.CANCELLED
            case OrderShipped():
                self.status = OrderStatus.SHIPPED
            case _:
                super().apply(event)

    def snapshot_state(self) -> dict[str, Any]:
        status = None if self.status is None else self.status.value
        return {"customer_id": self.customer_id, "status": status}

    @classmethod
    def from_snapshot(cls, aggregate_id: str, version: int, state: dict[str, Any]) -> Self:
        order = cls(aggregate_id)
        order.version = version
        order.customer_id = state["customer_id"]
        order.status = None if state["status"] is None else OrderStatus(state["status"])
        return order
