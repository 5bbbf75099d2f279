"""An order of several lines whose totals do not divide evenly by their units (a discount
and tax were applied), for given/when/then tests of shipments and returns."""

from __future__ import annotations

from collections.abc import Sequence

from kernel.messages import Event
from orders.commands import OrderLineRequest
from orders.domain import Order
from orders.events import OrderConfirmed, OrderPlaced, PricedLine
from tests.support.shop import ADDRESS
from tests.unit.orders.builders import CUSTOMER, ORDER, eur

# MUG: 2 x 12.50, 2.50 off, 19 % tax on 22.50 = 4.28: 26.78 charged in all.
MUG = PricedLine("MUG", "Enamel mug", 2, eur(1250), eur(2500), eur(250), eur(428), eur(2678))
# TEE: 3 x 19.99, nothing off, 19 % tax = 11.39: 71.36 charged, 23.786... a unit.
TEE = PricedLine("TEE", "Logo T-shirt", 3, eur(1999), eur(5997), eur(0), eur(1139), eur(7136))


def placed(*lines: PricedLine) -> OrderPlaced:
    lines = lines or (MUG, TEE)
    subtotal = sum((line.line_total for line in lines), eur(0))
    discount = sum((line.discount for line in lines), eur(0))
    tax = sum((line.tax for line in lines), eur(0))
    return OrderPlaced(
        order_id=ORDER,
        customer_id=CUSTOMER,
        lines=lines,
        subtotal=subtotal,
        shipping=eur(499),
        total=subtotal - discount + tax + eur(499),
        shipping_address=ADDRESS,
        payment_token="pm_card_visa",
        discounts=(),
        discount_total=discount,
        taxes=(),
        tax_total=tax,
        billing_address=ADDRESS,
    )


CONFIRMED: list[Event] = [placed(), OrderConfirmed(ORDER)]


def given(history: Sequence[Event]) -> Order:
    order = Order(ORDER)
    order.replay(history)
    return order


def lines(**units: int) -> tuple[OrderLineRequest, ...]:
    """Requested lines, e.g. lines(MUG=1, TEE=2)."""
    return tuple(OrderLineRequest(sku, quantity) for sku, quantity in units.items())
