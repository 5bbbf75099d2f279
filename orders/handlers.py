"""One handler per command: load, decide on one aggregate, save."""

from __future__ import annotations

from collections.abc import Callable

from kernel.command_bus import CommandBus
from kernel.personal_data import Forgotten
from kernel.unit_of_work import UnitOfWork
from orders import accounts, holds
from orders.commands import (
    CancelOrder,
    ConfirmOrder,
    ForgetCustomer,
    PlaceOrder,
    RegisterCustomer,
    ShipOrder,
)
from orders.domain import Customer, HoldLimits, Order, catalog_lines
from orders.ports import PaymentLedger, Pricing, PricingRequest, ProductCatalog


def register(
    bus: CommandBus,
    catalog: ProductCatalog,
    payments: PaymentLedger,
    limits: HoldLimits,
    pricing: Pricing,
) -> None:
    """Register this context's command handlers."""
    bus.register(RegisterCustomer, register_customer)
    bus.register(ForgetCustomer, forget_customer)
    bus.register(PlaceOrder, place_order_from(catalog, limits, pricing))
    bus.register(ConfirmOrder, confirm_order)
    bus.register(CancelOrder, cancel_order)
    bus.register(ShipOrder, ship_order_from(payments))


def register_customer(command: RegisterCustomer, uow: UnitOfWork) -> str:
    customer = uow.load(Customer, command.customer_id) or Customer(command.customer_id)
    customer.register(command.email, command.name)
    # In this transaction: the email is claimed if and only if the customer is registered.
    accounts.claim_email(uow, customer.id, command.email, command.password_hash)
    uow.save(customer)
    return customer.id


def forget_customer(command: ForgetCustomer, uow: UnitOfWork) -> str:
    # Anything sealed with the key from now on, by a command already under way, opens with
    # no key anywhere: it reads erased like the rest.
    uow.forget_personal_data(command.customer_id)
    customer = uow.get(Customer, command.customer_id)
    customer.forget()
    accounts.close(uow, customer.id)  # their sessions end with it
    uow.save(customer)
    return customer.id


def place_order_from(
    catalog: ProductCatalog, limits: HoldLimits, pricing: Pricing
) -> Callable[[PlaceOrder, UnitOfWork], str]:
    def place_order(command: PlaceOrder, uow: UnitOfWork) -> str:
        customer = uow.get(Customer, command.customer_id, lock=False)
        if customer.forgotten:
            raise Forgotten(f"customer {customer.id} was forgotten")
        order = uow.load(Order, command.order_id) or Order(command.order_id)
        entries = catalog.describe(uow, {line.sku for line in command.lines})
        request = PricingRequest(
            customer_id=command.customer_id,
            lines=catalog_lines(command.lines, entries),
            destination=command.shipping_address.country,
            coupon_code=command.coupon_code,
        )
        # In this transaction: the coupon's use counts if and only if the order is placed.
        priced = pricing.redeem(uow, order.id, request)
        order.place(
            command.customer_id,
            priced,
            command.shipping_address,
            command.payment_token,
            billing_address=command.billing_address,
            cart_id=command.cart_id,
        )
        units = sum(line.quantity for line in command.lines)
        limits.check(holds.held_by(uow, command.customer_id), units)
        holds.hold(uow, command.customer_id, order.id, units)
        uow.save(order)
        return order.id

    return place_order


def confirm_order(command: ConfirmOrder, uow: UnitOfWork) -> str:
    order = uow.get(Order, command.order_id)
    order.confirm()
    holds.release(uow, order.id)  # paid: its stock is sold, no longer held
    uow.save(order)
    return order.id


def cancel_order(command: CancelOrder, uow: UnitOfWork) -> str:
    order = uow.get(Order, command.order_id)
    order.cancel(command.reason, command.cancelled_by, command.customer_id)
    holds.release(uow, order.id)
    uow.save(order)
    return order.id


def ship_order_from(payments: PaymentLedger) -> Callable[[ShipOrder, UnitOfWork], str]:
    def ship_order(command: ShipOrder, uow: UnitOfWork) -> str:
        order = uow.get(Order, command.order_id)
        refunded = payments.refunded(uow, order.id)
        order.ship(command.tracking_number, payment_refunded=refunded)
        uow.save(order)
        return order.id

    return ship_order
