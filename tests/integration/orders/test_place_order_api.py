from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kernel.messages import Event
from kernel.money import Money
from orders.events import Address, OrderPlaced, PricedLine
from tests.integration.orders.support import Placer, order_body, problem
from tests.support.api_client import Customer
from tests.support.shop import ADDRESS_DATA


def eur(amount: int) -> Money:
    return Money(amount, "EUR")


def test_placing_an_order_records_it_priced_from_the_catalog(
    customer: Customer, place_order: Placer, stream: Callable[[str], list[Event]]
) -> None:
    response = place_order(customer)

    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "pending"
    assert body["consistency_token"]
    assert response.headers["Location"] == f"/api/orders/{body['order_id']}"
    assert stream(f"order-{body['order_id']}") == [
        OrderPlaced(
            order_id=body["order_id"],
            customer_id=customer.customer_id,
            lines=(
                PricedLine(
                    "MUG-1", "Enamel mug", 2, eur(1250), eur(2500), eur(0), eur(0), eur(2500)
                ),
                PricedLine(
                    "TEE-1", "Logo T-shirt", 1, eur(1999), eur(1999), eur(0), eur(0), eur(1999)
                ),
            ),
            subtotal=eur(4499),
            shipping=eur(499),
            total=eur(4998),
            shipping_address=Address(**ADDRESS_DATA),
            payment_token="pm_card_visa",
            discounts=(),
            discount_total=eur(0),
            taxes=(),
            tax_total=eur(0),
            billing_address=Address(**ADDRESS_DATA),
        )
    ]


def test_orders_from_fifty_euros_ship_free(
    customer: Customer, place_order: Placer, stream: Callable[[str], list[Event]]
) -> None:
    response = place_order(customer, order_body(lines=[{"sku": "MUG-1", "quantity": 4}]))

    (placed,) = stream(f"order-{response.get_json()['order_id']}")
    assert isinstance(placed, OrderPlaced)
    assert (placed.subtotal, placed.shipping, placed.total) == (eur(5000), eur(0), eur(5000))


def _address(**changes: str) -> dict[str, str]:
    return ADDRESS_DATA | changes


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (order_body(lines=[]), ["lines"]),
        (order_body(lines=[{"sku": "MUG-1", "quantity": 1}] * 51), ["lines"]),
        (order_body(lines=[{"sku": "MUG-1", "quantity": 0}]), ["lines", "0", "quantity"]),
        (order_body(lines=[{"sku": "MUG-1", "quantity": -3}]), ["lines", "0", "quantity"]),
        (order_body(lines=[{"sku": "MUG-1", "quantity": 1001}]), ["lines", "0", "quantity"]),
        (order_body(lines=[{"sku": "MUG-1", "quantity": "2"}]), ["lines", "0", "quantity"]),
        (order_body(lines=[{"sku": "MUG-1", "quantity": 1.5}]), ["lines", "0", "quantity"]),
        (order_body(lines=[{"sku": "", "quantity": 1}]), ["lines", "0", "sku"]),
        (order_body(lines=[{"sku": "S" * 33, "quantity": 1}]), ["lines", "0", "sku"]),
        (order_body(lines=[{"quantity": 1}]), ["lines", "0", "sku"]),
        (order_body(shipping_address=_address(name="N" * 121)), ["shipping_address", "name"]),
        (order_body(shipping_address=_address(line1="")), ["shipping_address", "line1"]),
        (order_body(shipping_address=_address(city=" ")), ["shipping_address", "city"]),
        (
            order_body(shipping_address=_address(postal_code="1" * 21)),
            ["shipping_address", "postal_code"],
        ),
        (order_body(shipping_address=_address(country="gb")), ["shipping_address", "country"]),
        (order_body(shipping_address=_address(country="GBR")), ["shipping_address", "country"]),
        # The shape of a code is not enough: it must be a country (ISO 3166-1 alpha-2).
        (order_body(shipping_address=_address(country="XX")), ["shipping_address", "country"]),
        (order_body(shipping_address=_address(line2="x" * 121)), ["shipping_address", "line2"]),
        (order_body(billing_address=_address(country="ZZ")), ["billing_address", "country"]),
        (order_body(billing_address={"name": "Ada"}), ["billing_address", "line1"]),
        (order_body(coupon_code="no spaces"), ["coupon_code"]),
        (order_body(coupon_code=""), ["coupon_code"]),
        (order_body(shipping_address={}), ["shipping_address", "name"]),
        (order_body(payment={"token": ""}), ["payment", "token"]),
        (order_body(payment={"token": "t" * 65}), ["payment", "token"]),
        (
            {"lines": [{"sku": "MUG-1", "quantity": 1}], "payment": {"token": "t"}},
            ["shipping_address"],
        ),
        (order_body(lines=None), ["lines"]),
        (order_body(coupon="FREE"), ["coupon"]),
    ],
)
def test_invalid_orders_name_the_bad_field_and_store_nothing(
    customer: Customer,
    place_order: Placer,
    count_events: Callable[[str], int],
    body: dict[str, Any],
    path: list[str],
) -> None:
    problem_body = problem(place_order(customer, body), 422)

    errors = problem_body["errors"]
    for key in path:
        assert key in errors, problem_body
        errors = errors[key]
    assert count_events("OrderPlaced") == 0


def test_every_bad_field_is_listed_at_once(customer: Customer, place_order: Placer) -> None:
    body = order_body(
        lines=[{"sku": "", "quantity": 0}],
        shipping_address=_address(country="xx"),
        payment={},
    )

    errors = problem(place_order(customer, body), 422)["errors"]

    assert set(errors["lines"]["0"]) == {"sku", "quantity"}
    assert set(errors["shipping_address"]) == {"country"}
    assert set(errors["payment"]) == {"token"}


def test_an_unknown_sku_is_unprocessable_and_named(
    customer: Customer, place_order: Placer, count_events: Callable[[str], int]
) -> None:
    body = order_body(lines=[{"sku": "MUG-1", "quantity": 1}, {"sku": "GHOST-9", "quantity": 1}])

    problem_body = problem(place_order(customer, body), 422)

    assert problem_body["type"] == "/problems/unknown-sku"
    assert "GHOST-9" in problem_body["detail"]
    assert count_events("OrderPlaced") == 0


def test_lines_in_two_currencies_are_unprocessable(customer: Customer, place_order: Placer) -> None:
    body = order_body(lines=[{"sku": "MUG-1", "quantity": 1}, {"sku": "BOOK-1", "quantity": 1}])

    assert problem(place_order(customer, body), 422)["type"] == "/problems/mixed-currency"


def test_a_sku_on_two_lines_is_unprocessable(customer: Customer, place_order: Placer) -> None:
    body = order_body(lines=[{"sku": "MUG-1", "quantity": 1}, {"sku": "MUG-1", "quantity": 2}])

    assert problem(place_order(customer, body), 422)["type"] == "/problems/duplicate-sku"


def test_a_retry_with_the_same_idempotency_key_gets_the_same_answer_and_one_order(
    customer: Customer, place_order: Placer, count_events: Callable[[str], int]
) -> None:
    first = place_order(customer, **{"Idempotency-Key": "checkout-42"})
    again = place_order(customer, **{"Idempotency-Key": "checkout-42"})

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert count_events("OrderPlaced") == 1


def test_reusing_an_idempotency_key_for_another_order_is_unprocessable(
    customer: Customer, place_order: Placer, count_events: Callable[[str], int]
) -> None:
    place_order(customer, **{"Idempotency-Key": "checkout-42"})
    other = order_body(lines=[{"sku": "TEE-1", "quantity": 3}])

    problem_body = problem(place_order(customer, other, **{"Idempotency-Key": "checkout-42"}), 422)

    assert problem_body["type"] == "/problems/command-id-reused"
    assert count_events("OrderPlaced") == 1


def test_idempotency_keys_are_scoped_to_the_customer(
    register_customer: Callable[..., Customer],
    place_order: Placer,
    count_events: Callable[[str], int],
) -> None:
    ada = register_customer("ada@example.com")
    grace = register_customer("grace@example.com")

    first = place_order(ada, **{"Idempotency-Key": "checkout-1"})
    second = place_order(grace, **{"Idempotency-Key": "checkout-1"})

    assert (first.status_code, second.status_code) == (202, 202)
    assert first.get_json()["order_id"] != second.get_json()["order_id"]
    assert count_events("OrderPlaced") == 2


def test_orders_without_an_idempotency_key_are_separate_orders(
    customer: Customer, place_order: Placer, count_events: Callable[[str], int]
) -> None:
    first = place_order(customer)
    second = place_order(customer)

    assert first.get_json()["order_id"] != second.get_json()["order_id"]
    assert count_events("OrderPlaced") == 2


@pytest.mark.parametrize("key", ["", "k" * 101])
def test_a_malformed_idempotency_key_is_unprocessable(
    customer: Customer, place_order: Placer, count_events: Callable[[str], int], key: str
) -> None:
    errors = problem(place_order(customer, **{"Idempotency-Key": key}), 422)["errors"]

    assert "Idempotency-Key" in errors
    assert count_events("OrderPlaced") == 0
