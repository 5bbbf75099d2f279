from __future__ import annotations

import pytest

from kernel.errors import DomainError
from orders.commands import OrderLineRequest
from orders.domain import Order, catalog_lines
from orders.events import Address, Discount, OrderPlaced, PricedLine, TaxLine
from orders.ports import CatalogLine, PricedOrder
from tests.support.shop import ADDRESS
from tests.unit.orders.builders import CATALOG, CUSTOMER, ORDER, eur, placed

# What the pricing context answers for 2 mugs shipped to Germany with a 10 % coupon.
MUG_LINE = PricedLine("MUG", "Enamel mug", 2, eur(1250), eur(2500), eur(250), eur(427), eur(2677))
PRICED = PricedOrder(
    lines=(MUG_LINE,),
    subtotal=eur(2500),
    discounts=(Discount("coupon:WELCOME10", "10 % off", eur(250)),),
    discount_total=eur(250),
    taxes=(TaxLine("DE", 1900, eur(2749), eur(522)),),
    tax_total=eur(522),
    shipping=eur(499),
    total=eur(3271),
    prices_include_tax=True,
    coupon_code="WELCOME10",
)
BILLING = Address("Ada's office", "1 Main Street", "Berlin", "10115", "DE", region="BE")


def _rejection(*lines: OrderLineRequest) -> DomainError:
    with pytest.raises(DomainError) as error:
        catalog_lines(lines, CATALOG)
    return error.value


def test_placing_an_order_records_the_price_breakdown_it_was_given() -> None:
    order = Order(ORDER)

    order.place(CUSTOMER, PRICED, ADDRESS, "pm_card_visa", billing_address=BILLING, cart_id="c-1")

    assert order.pending_events == (
        OrderPlaced(
            order_id=ORDER,
            customer_id=CUSTOMER,
            lines=(MUG_LINE,),
            subtotal=eur(2500),
            shipping=eur(499),
            total=eur(3271),
            shipping_address=ADDRESS,
            payment_token="pm_card_visa",
            discounts=PRICED.discounts,
            discount_total=eur(250),
            taxes=PRICED.taxes,
            tax_total=eur(522),
            billing_address=BILLING,
            prices_include_tax=True,
            coupon_code="WELCOME10",
            cart_id="c-1",
        ),
    )


def test_an_order_without_a_billing_address_is_billed_where_it_ships() -> None:
    order = Order(ORDER)

    order.place(CUSTOMER, PRICED, ADDRESS, "pm_card_visa")

    (event,) = order.pending_events
    assert isinstance(event, OrderPlaced)
    assert event.billing_address == ADDRESS


def test_the_lines_are_checked_against_the_catalog_before_pricing() -> None:
    lines = catalog_lines([OrderLineRequest("MUG", 2), OrderLineRequest("TEE", 1)], CATALOG)

    assert lines == (CatalogLine(CATALOG["MUG"], 2), CatalogLine(CATALOG["TEE"], 1))


def test_unknown_skus_are_rejected_and_named() -> None:
    error = _rejection(OrderLineRequest("MUG", 1), OrderLineRequest("NOPE", 1))

    assert error.code == "unknown_sku"
    assert "NOPE" in error.message


def test_a_sku_repeated_across_lines_is_rejected() -> None:
    error = _rejection(OrderLineRequest("MUG", 1), OrderLineRequest("MUG", 2))

    assert error.code == "duplicate_sku"
    assert "MUG" in error.message


def test_an_order_without_lines_is_rejected() -> None:
    assert _rejection().code == "invalid"


@pytest.mark.parametrize("quantity", [0, -1])
def test_a_quantity_below_one_is_rejected(quantity: int) -> None:
    assert _rejection(OrderLineRequest("MUG", quantity)).code == "invalid"


def test_an_order_cannot_be_placed_twice_under_one_id() -> None:
    order = Order(ORDER)
    order.replay([placed()])

    with pytest.raises(DomainError) as error:
        order.place(CUSTOMER, PRICED, ADDRESS, "pm_card_visa")

    assert error.value.code == "order_exists"
    assert order.pending_events == ()
