"""The carts' command handlers: load the cart, let the caller use it, decide, save.

Checking out places the order with the placing handler itself, in the same unit of work:
the order is placed if and only if the cart is checked out, and a refused order (an
unknown SKU, a coupon that does not apply, a cap on holds) leaves the cart as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from kernel.command_bus import CommandBus
from kernel.unit_of_work import UnitOfWork, lock_streams
from orders.carts import Cart, Touch
from orders.commands import (
    AddItemToCart,
    ApplyCoupon,
    ChangeCartItemQuantity,
    CheckOutCart,
    MergeCarts,
    PlaceOrder,
    RemoveCoupon,
    RemoveItemFromCart,
    StartCart,
)
from orders.ports import ProductCatalog

PlaceOrderHandler = Callable[[PlaceOrder, UnitOfWork], str]


def register(
    bus: CommandBus, catalog: ProductCatalog, place_order: PlaceOrderHandler, ttl: timedelta
) -> None:
    """Register the carts' handlers: `place_order` is the orders' own placing handler,
    `ttl` how long a cart may lie untouched before it is emptied."""
    bus.register(StartCart, start_cart_from(catalog, ttl))
    bus.register(AddItemToCart, add_item_from(catalog, ttl))
    bus.register(ChangeCartItemQuantity, lambda c, uow: change_quantity(c, uow, ttl))
    bus.register(RemoveItemFromCart, lambda c, uow: remove_item(c, uow, ttl))
    bus.register(ApplyCoupon, lambda c, uow: apply_coupon(c, uow, ttl))
    bus.register(RemoveCoupon, lambda c, uow: remove_coupon(c, uow, ttl))
    bus.register(MergeCarts, lambda c, uow: merge_carts(c, uow, ttl))
    bus.register(CheckOutCart, check_out_from(place_order, ttl))


def _touch(uow: UnitOfWork, ttl: timedelta) -> Touch:
    # The command's own time: a retried command decides on the same instant.
    return Touch(uow.metadata.occurred_at, ttl)


def _used(uow: UnitOfWork, cart_id: str, customer_id: str | None, touch: Touch) -> Cart:
    cart = uow.load(Cart, cart_id) or Cart(cart_id)
    cart.use(customer_id, touch)
    return cart


def start_cart_from(
    catalog: ProductCatalog, ttl: timedelta
) -> Callable[[StartCart, UnitOfWork], str]:
    def start_cart(command: StartCart, uow: UnitOfWork) -> str:
        touch = _touch(uow, ttl)
        cart = uow.load(Cart, command.cart_id) or Cart(command.cart_id)
        cart.start(None, touch)
        entries = catalog.describe(uow, {line.sku for line in command.lines})
        for line in command.lines:
            cart.add_item(line.sku, line.quantity, entries, touch)
        uow.save(cart)
        return cart.id

    return start_cart


def add_item_from(
    catalog: ProductCatalog, ttl: timedelta
) -> Callable[[AddItemToCart, UnitOfWork], str]:
    def add_item(command: AddItemToCart, uow: UnitOfWork) -> str:
        touch = _touch(uow, ttl)
        cart = _used(uow, command.cart_id, command.customer_id, touch)
        entries = catalog.describe(uow, {command.sku})
        cart.add_item(command.sku, command.quantity, entries, touch)
        uow.save(cart)
        return cart.id

    return add_item


def change_quantity(command: ChangeCartItemQuantity, uow: UnitOfWork, ttl: timedelta) -> str:
    touch = _touch(uow, ttl)
    cart = _used(uow, command.cart_id, command.customer_id, touch)
    cart.change_quantity(command.sku, command.quantity, touch)
    uow.save(cart)
    return cart.id


def remove_item(command: RemoveItemFromCart, uow: UnitOfWork, ttl: timedelta) -> str:
    touch = _touch(uow, ttl)
    cart = _used(uow, command.cart_id, command.customer_id, touch)
    cart.remove_item(command.sku, touch)
    uow.save(cart)
    return cart.id


def apply_coupon(command: ApplyCoupon, uow: UnitOfWork, ttl: timedelta) -> str:
    touch = _touch(uow, ttl)
    cart = _used(uow, command.cart_id, command.customer_id, touch)
    cart.apply_coupon(command.code, touch)
    uow.save(cart)
    return cart.id


def remove_coupon(command: RemoveCoupon, uow: UnitOfWork, ttl: timedelta) -> str:
    touch = _touch(uow, ttl)
    cart = _used(uow, command.cart_id, command.customer_id, touch)
    cart.remove_coupon(touch)
    uow.save(cart)
    return cart.id


def _merge(
    uow: UnitOfWork, cart_id: str, from_cart_id: str, customer_id: str, touch: Touch
) -> Cart:
    """The customer's cart with the anonymous one merged in; both saved."""
    # Two carts in one transaction: their locks in sorted order (kernel.unit_of_work).
    lock_streams(uow.conn, [Cart.stream_for(cart_id), Cart.stream_for(from_cart_id)])
    cart = _used(uow, cart_id, customer_id, touch)
    anonymous = uow.load(Cart, from_cart_id) or Cart(from_cart_id)
    if anonymous.closed_into != cart.id:  # merged here before: nothing to use it for
        anonymous.use(None, touch)
    cart.merge(anonymous, touch)
    uow.save(anonymous)
    uow.save(cart)
    return cart


def merge_carts(command: MergeCarts, uow: UnitOfWork, ttl: timedelta) -> str:
    touch = _touch(uow, ttl)
    cart = _merge(uow, command.cart_id, command.from_cart_id, command.customer_id, touch)
    return cart.id


def check_out_from(
    place_order: PlaceOrderHandler, ttl: timedelta
) -> Callable[[CheckOutCart, UnitOfWork], str]:
    def check_out(command: CheckOutCart, uow: UnitOfWork) -> str:
        touch = _touch(uow, ttl)
        if command.merge_from is not None:
            cart = _merge(uow, command.cart_id, command.merge_from, command.customer_id, touch)
        else:
            cart = _used(uow, command.cart_id, command.customer_id, touch)
        order = PlaceOrder(
            order_id=command.order_id,
            customer_id=command.customer_id,
            lines=cart.order_lines(),
            shipping_address=command.shipping_address,
            payment_token=command.payment_token,
            billing_address=command.billing_address,
            coupon_code=cart.coupon_code,
            cart_id=cart.id,
        )
        place_order(order, uow)
        cart.check_out(command.order_id, touch)
        uow.save(cart)
        return command.order_id

    return check_out
