"""Customers and orders: the rules of registering, placing and the order lifecycle (the
prices are the pricing context's, through the Pricing port)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Self

from kernel.aggregate import Aggregate
from kernel.errors import DomainError, Invalid, NotFound
from kernel.messages import Event
from kernel.money import Money
from orders import fulfilment
from orders.commands import OrderLineRequest
from orders.events import (
    Address,
    CancelledBy,
    CustomerForgotten,
    CustomerRegistered,
    ItemLine,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderShipped,
    ReturnInspected,
    ReturnReceived,
    ReturnRequested,
    ShipmentDispatched,
)
from orders.fulfilment import Return, ReturnStatus, Shipment
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
    fulfilment.item_lines(requested)  # at least one unit each, each SKU once
    unknown = [line.sku for line in requested if line.sku not in catalog]
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
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"


SHIPPABLE = (OrderStatus.CONFIRMED, OrderStatus.PARTIALLY_SHIPPED)
_SHIPMENT_IDS = uuid.UUID("5d2b8f3e-7c41-4a96-9e0d-1f6a3b8c2e57")


def whole_shipment_id(order_id: str) -> str:
    """The id of the shipment that ships all an order still holds (ShipOrder): one per
    order, since the order has shipped after it."""
    return str(uuid.uuid5(_SHIPMENT_IDS, f"rest/{order_id}"))


class Order(Aggregate):
    """pending -> confirmed -> (partially_shipped ->) shipped; pending or confirmed ->
    cancelled. Shipped units may come back in returns: requested -> received ->
    inspected, when the accepted units are refunded what they were charged.

    Confirming a confirmed order and cancelling a cancelled one succeed without a
    new event: the saga may deliver the same decision twice. Shipping a shipped order
    is refused, since a second tracking number would contradict the first; a shipment
    or a return named again by its id changes nothing (another body under it is refused).
    """

    stream_type = "order"
    snapshot_version = 2  # v1 held the customer and the status only

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.customer_id = ""
        self.status: OrderStatus | None = None
        self.currency = ""
        self.charged: dict[str, fulfilment.Charged] = {}
        self.shipped: fulfilment.Units = {}
        self.shipments: dict[str, Shipment] = {}
        self.returns: dict[str, Return] = {}
        self.refunded: dict[str, fulfilment.Refunded] = {}

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
        """Ship everything still unshipped, as one shipment."""
        self._check_shippable(payment_refunded)
        rest = tuple(ItemLine(sku, n) for sku, n in self.unshipped().items() if n > 0)
        self._dispatch(whole_shipment_id(self.id), rest, tracking_number)

    def ship_lines(
        self,
        shipment_id: str,
        lines: Sequence[OrderLineRequest],
        tracking_number: str,
        *,
        payment_refunded: bool = False,
    ) -> None:
        """Ship some of the units not shipped yet; the last of them ship the order."""
        if not shipment_id.strip():
            raise Invalid("a shipment needs an id")
        items = fulfilment.item_lines(lines)
        known = self.shipments.get(shipment_id)
        if known is not None:
            if fulfilment.units(known.lines) == fulfilment.units(items) and (
                known.tracking_number == tracking_number
            ):
                return  # the same shipment, told again
            raise DomainError(
                f"shipment {shipment_id} of order {self.id} was dispatched with other lines"
                " or another tracking number",
                code="shipment_conflict",
            )
        self._check_shippable(payment_refunded)
        self._check_skus(items)
        over = fulfilment.exceeding(items, self.unshipped())
        if over:
            raise DomainError(
                f"more units than are left to ship ({'; '.join(over)})", code="exceeds_unshipped"
            )
        self._dispatch(shipment_id, items, tracking_number)

    def request_return(
        self,
        return_id: str,
        lines: Sequence[OrderLineRequest],
        reason: str,
        customer_id: str | None = None,
    ) -> None:
        """Announce shipped units coming back; only units shipped and in no other return
        (open, or accepted) may be."""
        if customer_id is not None and customer_id != self.customer_id:
            # As for cancelling: no one learns of others' orders.
            raise NotFound(f"{self.stream_type} {self.id} does not exist")
        if not return_id.strip():
            raise Invalid("a return needs an id")
        items = fulfilment.item_lines(lines)
        known = self.returns.get(return_id)
        if known is not None:
            if fulfilment.units(known.lines) == fulfilment.units(items) and (
                known.reason == reason
            ):
                return  # the same return, asked again
            raise DomainError(
                f"return {return_id} of order {self.id} was requested with other lines or"
                " another reason",
                code="return_conflict",
            )
        self._check_skus(items)
        over = fulfilment.exceeding(items, self.returnable())
        if over:
            raise DomainError(
                f"more units than were shipped and are not in another return ({'; '.join(over)})",
                code="exceeds_returnable",
            )
        self.record(ReturnRequested(self.id, return_id, items, reason))

    def receive_return(self, return_id: str) -> None:
        """The warehouse got the parcel of a return (again: nothing changes)."""
        if self._return(return_id).status is ReturnStatus.REQUESTED:
            self.record(ReturnReceived(self.id, return_id))

    def inspect_return(
        self, return_id: str, accepted: Sequence[OrderLineRequest], note: str = ""
    ) -> None:
        """Accept `accepted` of a received return (the rest is rejected) and refund what
        the accepted units were charged; shipping is not refunded."""
        returned = self._return(return_id)
        items = fulfilment.item_lines(accepted, allow_none=True)
        if returned.status is ReturnStatus.INSPECTED:
            if fulfilment.units(returned.accepted) == fulfilment.units(items) and (
                returned.note == note
            ):
                return  # the same inspection, told again
            raise DomainError(
                f"return {return_id} of order {self.id} was inspected already, with another"
                " outcome",
                code="return_conflict",
            )
        if returned.status is not ReturnStatus.RECEIVED:
            raise DomainError(
                f"return {return_id} of order {self.id} is {returned.status}; only a received"
                " return can be inspected",
                code="return_not_received",
            )
        over = fulfilment.exceeding(items, fulfilment.units(returned.lines))
        if over:
            raise DomainError(
                f"more units accepted than the return holds ({'; '.join(over)})",
                code="exceeds_returned",
            )
        amounts = fulfilment.refunds(items, self.charged, self.refunded)
        refund = Money(sum(amounts.values()), self.currency)
        rejected = fulfilment.rejected(returned.lines, items)
        self.record(ReturnInspected(self.id, return_id, items, rejected, refund, note))

    def unshipped(self) -> fulfilment.Units:
        """Units per SKU not shipped yet."""
        return {sku: c.quantity - self.shipped.get(sku, 0) for sku, c in self.charged.items()}

    def returnable(self) -> fulfilment.Units:
        """Units per SKU shipped and in no open or accepted return."""
        held: fulfilment.Units = {}
        for returned in self.returns.values():
            for sku, n in returned.holds().items():
                held[sku] = held.get(sku, 0) + n
        return {sku: n - held.get(sku, 0) for sku, n in self.shipped.items()}

    def _check_shippable(self, payment_refunded: bool) -> None:
        if self.status not in SHIPPABLE:
            raise DomainError(
                f"order {self.id} is {self.status}; only confirmed orders can be shipped",
                code="order_not_shippable",
            )
        if payment_refunded:  # goods refunded must not leave (the saga cancels it, if it can)
            raise DomainError(
                f"order {self.id} was refunded; nothing more of it ships",
                code="order_not_shippable",
            )

    def _check_skus(self, items: Sequence[ItemLine]) -> None:
        unknown = [line.sku for line in items if line.sku not in self.charged]
        if unknown:
            raise DomainError(f"not on order {self.id}: {', '.join(unknown)}", code="unknown_sku")

    def _dispatch(
        self, shipment_id: str, items: tuple[ItemLine, ...], tracking_number: str
    ) -> None:
        self.record(ShipmentDispatched(self.id, shipment_id, items, tracking_number))
        if not any(self.unshipped().values()):
            self.record(OrderShipped(self.id, tracking_number))

    def _return(self, return_id: str) -> Return:
        returned = self.returns.get(return_id)
        if returned is None:
            raise NotFound(f"return {return_id} of order {self.id} does not exist")
        return returned

    def apply(self, event: Event) -> None:
        match event:
            case OrderPlaced(customer_id=customer_id):
                self.customer_id = customer_id
                self.status = OrderStatus.PENDING
                self.currency = event.total.currency
                self.charged = fulfilment.charged_by_sku(event.lines)
            case OrderConfirmed():
                self.status = OrderStatus.CONFIRMED
            case OrderCancelled():
                self.status = OrderStatus.CANCELLED
            case ShipmentDispatched(shipment_id=shipment_id, lines=lines):
                self.shipments[shipment_id] = Shipment(lines, event.tracking_number)
                for line in lines:
                    self.shipped[line.sku] = self.shipped.get(line.sku, 0) + line.quantity
                self.status = OrderStatus.PARTIALLY_SHIPPED
            case OrderShipped():
                self.status = OrderStatus.SHIPPED
                # Orders shipped before shipments were recorded shipped everything at once.
                self.shipped = {sku: c.quantity for sku, c in self.charged.items()}
            case ReturnRequested(return_id=return_id, lines=lines, reason=reason):
                self.returns[return_id] = Return(lines, reason)
            case ReturnReceived(return_id=return_id):
                received = replace(self.returns[return_id], status=ReturnStatus.RECEIVED)
                self.returns[return_id] = received
            case ReturnInspected(return_id=return_id, accepted=accepted):
                amounts = fulfilment.refunds(accepted, self.charged, self.refunded)
                self.refunded = fulfilment.with_refunds(self.refunded, accepted, amounts)
                self.returns[return_id] = replace(
                    self.returns[return_id],
                    status=ReturnStatus.INSPECTED,
                    accepted=accepted,
                    rejected=event.rejected,
                    refund=event.refund,
                    note=event.note,
                )
            case _:
                super().apply(event)

    def snapshot_state(self) -> dict[str, Any]:
        status = None if self.status is None else self.status.value
        return {
            "customer_id": self.customer_id,
            "status": status,
            "currency": self.currency,
            "charged": fulfilment.charged_state(self.charged),
            "shipped": dict(self.shipped),
            "shipments": fulfilment.shipments_state(self.shipments),
            "returns": fulfilment.returns_state(self.returns),
            "refunded": fulfilment.refunded_state(self.refunded),
        }

    @classmethod
    def from_snapshot(cls, aggregate_id: str, version: int, state: dict[str, Any]) -> Self:
        order = cls(aggregate_id)
        order.version = version
        order.customer_id = state["customer_id"]
        order.status = None if state["status"] is None else OrderStatus(state["status"])
        order.currency = state["currency"]
        order.charged = fulfilment.charged_from(state["charged"])
        order.shipped = dict(state["shipped"])
        order.shipments = fulfilment.shipments_from(state["shipments"])
        order.returns = fulfilment.returns_from(state["returns"])
        order.refunded = fulfilment.refunded_from(state["refunded"])
        return order
