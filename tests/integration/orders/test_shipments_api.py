"""Shipping an order in parts through the admin API, against the real database."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from config.bootstrap import Application
from kernel.messages import Event
from kernel.money import Money
from kernel.results import Success
from orders.events import ItemLine, OrderShipped, ShipmentDispatched
from payments.commands import ProcessPayment, RecordChargeOutcome, RefundPayment
from tests.integration.orders.support import Placer, problem
from tests.support.api_client import Customer

Shipper = Callable[..., TestResponse]


@pytest.fixture
def ship_lines(client: FlaskClient, admin_headers: dict[str, str]) -> Shipper:
    def post(
        order_id: str, lines: dict[str, int], tracking_number: str = "T-1", **extra: Any
    ) -> TestResponse:
        body = {
            "lines": [{"sku": sku, "quantity": n} for sku, n in lines.items()],
            "tracking_number": tracking_number,
        }
        return client.post(
            f"/admin/api/orders/{order_id}/shipments", json=body | extra, headers=admin_headers
        )

    return post


def test_the_admin_ships_some_lines_then_the_rest(
    application: Application,
    confirmed_order: str,
    ship_lines: Shipper,
    stream: Callable[[str], list[Event]],
) -> None:
    first = ship_lines(confirmed_order, {"MUG-1": 1}, "T-1", shipment_id="parcel-1")
    rest = ship_lines(confirmed_order, {"MUG-1": 1, "TEE-1": 1}, "T-2")

    assert (first.status_code, rest.status_code) == (202, 202)
    assert first.get_json()["shipment_id"] == "parcel-1"
    assert first.get_json()["consistency_token"]
    second_id = rest.get_json()["shipment_id"]
    assert uuid.UUID(second_id)  # a new id when none is given
    assert stream(f"order-{confirmed_order}")[2:] == [
        ShipmentDispatched(confirmed_order, "parcel-1", (ItemLine("MUG-1", 1),), "T-1"),
        ShipmentDispatched(
            confirmed_order, second_id, (ItemLine("MUG-1", 1), ItemLine("TEE-1", 1)), "T-2"
        ),
        OrderShipped(confirmed_order, "T-2"),
    ]
    with application.engine.connect() as conn:
        recorded = application.store.read_stream(conn, f"order-{confirmed_order}")[-1]
    assert recorded.metadata.actor == "admin:bootstrap"


def test_the_same_shipment_sent_again_is_accepted_and_recorded_once(
    confirmed_order: str, ship_lines: Shipper, count_events: Callable[[str], int]
) -> None:
    first = ship_lines(confirmed_order, {"MUG-1": 1}, shipment_id="parcel-1")
    again = ship_lines(confirmed_order, {"MUG-1": 1}, shipment_id="parcel-1")

    assert (first.status_code, again.status_code) == (202, 202)
    assert count_events("ShipmentDispatched") == 1


def test_another_shipment_under_a_known_id_is_a_conflict(
    confirmed_order: str, ship_lines: Shipper, count_events: Callable[[str], int]
) -> None:
    ship_lines(confirmed_order, {"MUG-1": 1}, shipment_id="parcel-1")

    body = problem(ship_lines(confirmed_order, {"TEE-1": 1}, shipment_id="parcel-1"), 409)

    assert body["type"] == "/problems/shipment-conflict"
    assert count_events("ShipmentDispatched") == 1


def test_more_units_than_are_left_to_ship_are_a_conflict(
    confirmed_order: str, ship_lines: Shipper, count_events: Callable[[str], int]
) -> None:
    ship_lines(confirmed_order, {"MUG-1": 2})

    body = problem(ship_lines(confirmed_order, {"MUG-1": 1}), 409)

    assert body["type"] == "/problems/exceeds-unshipped"
    assert "MUG-1: 1 > 0" in body["detail"]
    assert count_events("ShipmentDispatched") == 1


@pytest.mark.parametrize(
    ("lines", "problem_type"),
    [
        ([{"sku": "LAMP-1", "quantity": 1}], "/problems/unknown-sku"),
        (
            [{"sku": "MUG-1", "quantity": 1}, {"sku": "MUG-1", "quantity": 1}],
            "/problems/duplicate-sku",
        ),
    ],
    ids=["not on the order", "named twice"],
)
def test_lines_naming_skus_wrongly_are_unprocessable(
    client: FlaskClient,
    admin_headers: dict[str, str],
    confirmed_order: str,
    lines: list[dict[str, Any]],
    problem_type: str,
) -> None:
    response = client.post(
        f"/admin/api/orders/{confirmed_order}/shipments",
        json={"lines": lines, "tracking_number": "T-1"},
        headers=admin_headers,
    )

    assert problem(response, 422)["type"] == problem_type


def test_every_bad_field_is_listed(
    client: FlaskClient, admin_headers: dict[str, str], confirmed_order: str
) -> None:
    response = client.post(
        f"/admin/api/orders/{confirmed_order}/shipments",
        json={"lines": [{"sku": "", "quantity": 0}], "tracking_number": "", "shipment_id": " "},
        headers=admin_headers,
    )

    errors = problem(response, 422)["errors"]
    assert set(errors) == {"lines", "tracking_number", "shipment_id"}
    assert set(errors["lines"]["0"]) == {"sku", "quantity"}


def test_a_pending_order_cannot_ship_lines(
    customer: Customer, place_order: Placer, ship_lines: Shipper
) -> None:
    order_id = place_order(customer).get_json()["order_id"]

    body = problem(ship_lines(order_id, {"MUG-1": 1}), 409)

    assert body["type"] == "/problems/order-not-shippable"


def test_no_shipment_leaves_once_the_payment_was_refunded(
    application: Application, confirmed_order: str, ship_lines: Shipper
) -> None:
    ship_lines(confirmed_order, {"MUG-1": 1})
    total = Money(2 * 1250 + 1999 + 499, "EUR")
    for command in (
        ProcessPayment(confirmed_order, total, "pm_card_visa"),
        RecordChargeOutcome(confirmed_order, 1, "succeeded", "pi_1", amount_captured=4998),
        RefundPayment(confirmed_order, "goodwill"),  # an admin refunds it all
    ):
        assert isinstance(application.bus.dispatch(command), Success)

    body = problem(ship_lines(confirmed_order, {"TEE-1": 1}), 409)

    assert "refunded" in body["detail"]


def test_shipping_lines_of_an_unknown_order_is_not_found(ship_lines: Shipper) -> None:
    problem(ship_lines(str(uuid.uuid4()), {"MUG-1": 1}), 404)


def test_customers_cannot_ship(
    client: FlaskClient, customer: Customer, confirmed_order: str
) -> None:
    response = client.post(
        f"/admin/api/orders/{confirmed_order}/shipments",
        json={"lines": [{"sku": "MUG-1", "quantity": 1}], "tracking_number": "T-1"},
        headers=customer.headers,
    )

    problem(response, 403)
