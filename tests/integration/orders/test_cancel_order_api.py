from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from kernel.messages import Event
from orders.events import CancelledBy, OrderCancelled
from tests.integration.orders.support import Placer, problem
from tests.support.api_client import Customer


def cancel(
    client: FlaskClient, customer: Customer, order_id: str, reason: str = "Changed my mind"
) -> TestResponse:
    return client.post(
        f"/api/orders/{order_id}/cancel", json={"reason": reason}, headers=customer.headers
    )


def test_a_customer_cancels_their_pending_order(
    client: FlaskClient,
    customer: Customer,
    place_order: Placer,
    stream: Callable[[str], list[Event]],
) -> None:
    order_id = place_order(customer).get_json()["order_id"]

    response = cancel(client, customer, order_id)

    assert response.status_code == 202
    assert response.get_json()["order_id"] == order_id
    assert response.get_json()["consistency_token"]
    assert stream(f"order-{order_id}")[1:] == [
        OrderCancelled(order_id, "Changed my mind", CancelledBy.CUSTOMER, "pending")
    ]


def test_a_customer_cancels_their_confirmed_order(
    client: FlaskClient,
    customer: Customer,
    confirmed_order: str,
    stream: Callable[[str], list[Event]],
) -> None:
    response = cancel(client, customer, confirmed_order)

    assert response.status_code == 202
    assert stream(f"order-{confirmed_order}")[-1] == OrderCancelled(
        confirmed_order, "Changed my mind", CancelledBy.CUSTOMER, "confirmed"
    )


def test_cancelling_twice_is_accepted_and_records_one_cancellation(
    client: FlaskClient,
    customer: Customer,
    place_order: Placer,
    count_events: Callable[[str], int],
) -> None:
    order_id = place_order(customer).get_json()["order_id"]

    first = cancel(client, customer, order_id)
    second = cancel(client, customer, order_id, reason="Really")

    assert (first.status_code, second.status_code) == (202, 202)
    assert count_events("OrderCancelled") == 1


def test_another_customers_order_looks_like_no_order_at_all(
    client: FlaskClient,
    register_customer: Callable[..., Customer],
    place_order: Placer,
    count_events: Callable[[str], int],
) -> None:
    ada = register_customer("ada@example.com")
    mallory = register_customer("mallory@example.com")
    order_id = place_order(ada).get_json()["order_id"]
    unknown_id = str(uuid.uuid4())

    theirs = problem(cancel(client, mallory, order_id), 404)
    missing = problem(cancel(client, mallory, unknown_id), 404)

    assert theirs["detail"] == f"order {order_id} does not exist"
    assert missing["detail"] == f"order {unknown_id} does not exist"
    assert count_events("OrderCancelled") == 0


def test_a_path_that_is_not_an_order_id_is_not_found(
    client: FlaskClient, customer: Customer
) -> None:
    response = cancel(client, customer, "not-a-uuid")

    problem(response, 404)


def test_a_shipped_order_can_no_longer_be_cancelled(
    client: FlaskClient,
    customer: Customer,
    confirmed_order: str,
    admin_headers: dict[str, str],
    count_events: Callable[[str], int],
) -> None:
    shipped = client.post(
        f"/admin/api/orders/{confirmed_order}/ship",
        json={"tracking_number": "1Z999AA10123456784"},
        headers=admin_headers,
    )
    assert shipped.status_code == 202

    body = problem(cancel(client, customer, confirmed_order), 409)

    assert body["type"] == "/problems/order-not-cancellable"
    assert body["detail"] == f"order {confirmed_order} is shipped and can no longer be cancelled"
    assert count_events("OrderCancelled") == 0


@pytest.mark.parametrize("reason", ["", "   ", "r" * 501])
def test_a_cancellation_needs_a_reason_of_at_most_500_characters(
    client: FlaskClient, customer: Customer, place_order: Placer, reason: str
) -> None:
    order_id = place_order(customer).get_json()["order_id"]

    body = problem(cancel(client, customer, order_id, reason=reason), 422)

    assert "reason" in body["errors"]


def test_a_cancellation_without_a_body_names_the_missing_reason(
    client: FlaskClient, customer: Customer, place_order: Placer
) -> None:
    order_id = place_order(customer).get_json()["order_id"]

    response = client.post(f"/api/orders/{order_id}/cancel", json={}, headers=customer.headers)

    assert "reason" in problem(response, 422)["errors"]
