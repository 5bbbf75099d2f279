from __future__ import annotations

import pytest

from kernel.errors import DomainError
from orders.commands import OrderLineRequest
from orders.domain import Order, quote
from orders.events import OrderPlaced, PricedLine
from tests.support.shop import ADDRESS
from tests.unit.orders.builders import CATALOG, CUSTOMER, ORDER, eur, placed


def _place(*lines: OrderLineRequest) -> Order:
    order = Order(ORDER)
    order.place(CUSTOMER, lines, CATALOG, ADDRESS, "pm_card_visa")
    return order


def _rejection(*lines: OrderLineRequest) -> DomainError:
    with pytest.raises(DomainError) as error:
        _place(*lines)
    return error.value


def test_placing_an_order_records_priced_lines_and_totals() -> None:
    order = _place(OrderLineRequest("MUG", 2), OrderLineRequest("TEE", 1))

    assert order.pending_events == (
        OrderPlaced(
            order_id=ORDER,
            customer_id=CUSTOMER,
            lines=(
                PricedLine("MUG", "Enamel mug", 2, eur(1250), eur(2500), eur(0), eur(0), eur(2500)),
                PricedLine(
                    "TEE", "Logo T-shirt", 1, eur(1999), eur(1999), eur(0), eur(0), eur(1999)
                ),
            ),
            subtotal=eur(4499),
            shipping=eur(499),
            total=eur(4998),
            shipping_address=ADDRESS,
            payment_token="pm_card_visa",
            discounts=(),
            discount_total=eur(0),
            taxes=(),
            tax_total=eur(0),
            billing_address=ADDRESS,
        ),
    )


@pytest.mark.parametrize(
    ("quantity", "subtotal", "shipping"),
    [
        (3, 3750, 499),  # below the 50.00 threshold
        (4, 5000, 0),  # exactly at it
        (5, 6250, 0),  # above it
    ],
)
def test_shipping_is_a_flat_fee_below_the_threshold_and_free_from_it(
    quantity: int, subtotal: int, shipping: int
) -> None:
    priced = quote([OrderLineRequest("MUG", quantity)], CATALOG)

    assert priced.subtotal == eur(subtotal)
    assert priced.shipping == eur(shipping)
    assert priced.total == eur(subtotal + shipping)


def test_line_totals_multiply_the_unit_price_by_the_quantity() -> None:
    priced = quote([OrderLineRequest("LAMP", 3)], CATALOG)

    assert priced.lines == (
        PricedLine("LAMP", "Desk lamp", 3, eur(4999), eur(14997), eur(0), eur(0), eur(14997)),
    )


def test_unknown_skus_are_rejected_and_named() -> None:
    error = _rejection(OrderLineRequest("MUG", 1), OrderLineRequest("NOPE", 1))

    assert error.code == "unknown_sku"
    assert "NOPE" in error.message


def test_lines_in_different_currencies_are_rejected() -> None:
    error = _rejection(OrderLineRequest("MUG", 1), OrderLineRequest("BOOK", 1))

    assert error.code == "mixed_currency"
    assert "EUR" in error.message and "GBP" in error.message


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
        order.place(CUSTOMER, [OrderLineRequest("MUG", 1)], CATALOG, ADDRESS, "pm_card_visa")

    assert error.value.code == "order_exists"
    assert order.pending_events == ()
