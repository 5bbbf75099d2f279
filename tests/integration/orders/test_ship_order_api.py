from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from config.bootstrap import Application
from kernel.messages import Event
from kernel.results import Success
from orders.commands import CancelOrder
from orders.events import CancelledBy, OrderShipped
from tests.integration.orders.support import Placer, problem
from tests.support.api_client import Customer


@pytest.fixture
def ship(client: FlaskClient, admin_headers: dict[str, str]) -> Callable[..., TestResponse]:
    def post(order_id: str, tracking_number: str = "1Z999AA10123456784") -> TestResponse:
        return client.post(
            f"/admin/api/orders/{order_id}/ship",
            json={"tracking_number": tracking_number},
            headers=admin_headers,
        )

    return post


def test_the_admin_ships_a_confirmed_order(
    application: Application,
    confirmed_order: str,
    ship: Callable[..., TestResponse],
) -> None:
    response = ship(confirmed_order)

    assert response.status_code == 202
    assert response.get_json()["order_id"] == confirmed_order
    with application.engine.connect() as conn:
        recorded = application.store.read_stream(conn, f"order-{confirmed_order}")[-1]
    assert recorded.event == OrderShipped(confirmed_order, "1Z999AA10123456784")
    assert recorded.metadata.actor == "admin:bootstrap"


def test_a_pending_order_cannot_ship_yet(
    customer: Customer,
    place_order: Placer,
    ship: Callable[..., TestResponse],
    count_events: Callable[[str], int],
) -> None:
    order_id = place_order(customer).get_json()["order_id"]

    body = problem(ship(order_id), 409)

    assert body["type"] == "/problems/order-not-shippable"
    assert "pending" in body["detail"]
    assert count_events("OrderShipped") == 0


def test_a_cancelled_order_cannot_ship(
    application: Application,
    confirmed_order: str,
    ship: Callable[..., TestResponse],
) -> None:
    cancelled = application.bus.dispatch(
        CancelOrder(confirmed_order, "payment failed", CancelledBy.SYSTEM)
    )
    assert isinstance(cancelled, Success)

    body = problem(ship(confirmed_order), 409)

    assert "cancelled" in body["detail"]


def test_shipping_twice_is_a_conflict(
    confirmed_order: str,
    ship: Callable[..., TestResponse],
    stream: Callable[[str], list[Event]],
) -> None:
    assert ship(confirmed_order).status_code == 202

    problem(ship(confirmed_order, "ANOTHER-1"), 409)

    assert stream(f"order-{confirmed_order}")[-1] == OrderShipped(
        confirmed_order, "1Z999AA10123456784"
    )


def test_shipping_an_unknown_order_is_not_found(ship: Callable[..., TestResponse]) -> None:
    problem(ship(str(uuid.uuid4())), 404)


@pytest.mark.parametrize("tracking_number", ["", "T" * 65])
def test_a_tracking_number_has_1_to_64_characters(
    confirmed_order: str, ship: Callable[..., TestResponse], tracking_number: str
) -> None:
    body = problem(ship(confirmed_order, tracking_number), 422)

    assert "tracking_number" in body["errors"]
