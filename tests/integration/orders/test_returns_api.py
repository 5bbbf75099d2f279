"""Returns through the API, against the real database: the customer (or an operator)
requests one, the warehouse receives and inspects it."""

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
from orders.events import ItemLine, ReturnInspected, ReturnReceived, ReturnRequested
from tests.integration.orders.support import problem
from tests.support.api_client import Customer

Poster = Callable[..., TestResponse]


def body_of(reason: str = "Does not fit", **units: int) -> dict[str, Any]:
    units = units or {"MUG-1": 1}
    return {
        "lines": [{"sku": sku.replace("_", "-"), "quantity": n} for sku, n in units.items()],
        "reason": reason,
    }


@pytest.fixture
def shipped_order(client: FlaskClient, admin_headers: dict[str, str], confirmed_order: str) -> str:
    """The customer's order of 2 MUG-1 (12.50 each) and 1 TEE-1 (19.99), shipped."""
    shipped = client.post(
        f"/admin/api/orders/{confirmed_order}/ship",
        json={"tracking_number": "T-1"},
        headers=admin_headers,
    )
    assert shipped.status_code == 202
    return confirmed_order


@pytest.fixture
def request_return(client: FlaskClient, customer: Customer) -> Poster:
    def post(
        order_id: str,
        body: dict[str, Any] | None = None,
        who: Customer | None = None,
        **headers: str,
    ) -> TestResponse:
        return client.post(
            f"/api/orders/{order_id}/returns",
            json=body or body_of(),
            headers=(who or customer).headers | headers,
        )

    return post


@pytest.fixture
def admin(client: FlaskClient, admin_headers: dict[str, str]) -> Poster:
    """POST to an admin path of an order's returns, as the bootstrap admin."""

    def post(path: str, body: dict[str, Any] | None = None) -> TestResponse:
        return client.post(f"/admin/api/orders/{path}", json=body, headers=admin_headers)

    return post


def test_the_customer_asks_to_return_shipped_units(
    application: Application,
    customer: Customer,
    shipped_order: str,
    request_return: Poster,
    stream: Callable[[str], list[Event]],
) -> None:
    response = request_return(shipped_order, body_of(MUG_1=1, TEE_1=1))

    assert response.status_code == 202
    answer = response.get_json()
    assert answer["order_id"] == shipped_order and answer["consistency_token"]
    return_id = answer["return_id"]
    assert uuid.UUID(return_id)
    lines = (ItemLine("MUG-1", 1), ItemLine("TEE-1", 1))
    assert stream(f"order-{shipped_order}")[-1] == ReturnRequested(
        shipped_order, return_id, lines, "Does not fit"
    )
    with application.engine.connect() as conn:
        recorded = application.store.read_stream(conn, f"order-{shipped_order}")[-1]
    assert recorded.metadata.actor == f"customer:{customer.customer_id}"


def test_a_retry_with_the_same_idempotency_key_requests_one_return(
    shipped_order: str, request_return: Poster, count_events: Callable[[str], int]
) -> None:
    first = request_return(shipped_order, **{"Idempotency-Key": "return-42"})
    again = request_return(shipped_order, **{"Idempotency-Key": "return-42"})

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.get_json() == first.get_json()
    assert count_events("ReturnRequested") == 1


def test_reusing_an_idempotency_key_for_another_return_is_unprocessable(
    shipped_order: str, request_return: Poster, count_events: Callable[[str], int]
) -> None:
    request_return(shipped_order, **{"Idempotency-Key": "return-42"})

    response = request_return(shipped_order, body_of(TEE_1=1), **{"Idempotency-Key": "return-42"})

    assert problem(response, 422)["type"] == "/problems/command-id-reused"
    assert count_events("ReturnRequested") == 1


def test_another_customer_learns_nothing_of_the_order(
    register_customer: Callable[..., Customer],
    shipped_order: str,
    request_return: Poster,
    count_events: Callable[[str], int],
) -> None:
    stranger = register_customer("stranger@example.com")

    body = problem(request_return(shipped_order, who=stranger), 404)

    assert shipped_order not in str(body.get("errors", ""))
    assert count_events("ReturnRequested") == 0


def test_units_not_shipped_cannot_come_back(
    confirmed_order: str, request_return: Poster, count_events: Callable[[str], int]
) -> None:
    body = problem(request_return(confirmed_order), 409)

    assert body["type"] == "/problems/exceeds-returnable"
    assert count_events("ReturnRequested") == 0


def test_units_already_on_their_way_back_cannot_be_returned_twice(
    shipped_order: str, request_return: Poster
) -> None:
    assert request_return(shipped_order, body_of(MUG_1=2)).status_code == 202

    body = problem(request_return(shipped_order, body_of(MUG_1=1)), 409)

    assert "MUG-1: 1 > 0" in body["detail"]


def test_a_sku_not_on_the_order_is_unprocessable(
    shipped_order: str, request_return: Poster
) -> None:
    body = problem(request_return(shipped_order, body_of(LAMP_1=1)), 422)

    assert body["type"] == "/problems/unknown-sku"


def test_every_bad_field_of_a_return_is_listed(shipped_order: str, request_return: Poster) -> None:
    errors = problem(request_return(shipped_order, {"lines": [], "reason": " "}), 422)["errors"]

    assert set(errors) == {"lines", "reason"}


def test_an_operator_asks_for_the_customer_then_receives_and_inspects_the_return(
    application: Application,
    shipped_order: str,
    admin: Poster,
    stream: Callable[[str], list[Event]],
) -> None:
    requested = admin(f"{shipped_order}/returns", body_of(MUG_1=2, TEE_1=1))
    assert requested.status_code == 202
    return_id = requested.get_json()["return_id"]

    received = admin(f"{shipped_order}/returns/{return_id}/receive")
    inspected = admin(
        f"{shipped_order}/returns/{return_id}/inspect",
        {"accepted": [{"sku": "MUG-1", "quantity": 1}], "note": "one mug chipped"},
    )

    assert (received.status_code, inspected.status_code) == (202, 202)
    assert inspected.get_json()["return_id"] == return_id
    assert stream(f"order-{shipped_order}")[-2:] == [
        ReturnReceived(shipped_order, return_id),
        ReturnInspected(
            shipped_order,
            return_id,
            accepted=(ItemLine("MUG-1", 1),),
            rejected=(ItemLine("MUG-1", 1), ItemLine("TEE-1", 1)),
            refund=Money(1250, "EUR"),  # one mug of two charged 25.00; no shipping
            note="one mug chipped",
        ),
    ]
    with application.engine.connect() as conn:
        actors = {
            recorded.metadata.actor
            for recorded in application.store.read_stream(conn, f"order-{shipped_order}")[-3:]
        }
    assert actors == {"admin:bootstrap"}


def test_receiving_twice_records_one_receipt(
    shipped_order: str,
    request_return: Poster,
    admin: Poster,
    count_events: Callable[[str], int],
) -> None:
    return_id = request_return(shipped_order).get_json()["return_id"]

    first = admin(f"{shipped_order}/returns/{return_id}/receive")
    again = admin(f"{shipped_order}/returns/{return_id}/receive")

    assert (first.status_code, again.status_code) == (202, 202)
    assert count_events("ReturnReceived") == 1


def test_a_return_not_received_cannot_be_inspected(
    shipped_order: str, request_return: Poster, admin: Poster
) -> None:
    return_id = request_return(shipped_order).get_json()["return_id"]

    response = admin(f"{shipped_order}/returns/{return_id}/inspect", {"accepted": []})

    assert problem(response, 409)["type"] == "/problems/return-not-received"


def test_accepting_more_than_came_back_is_unprocessable(
    shipped_order: str, request_return: Poster, admin: Poster
) -> None:
    return_id = request_return(shipped_order).get_json()["return_id"]
    admin(f"{shipped_order}/returns/{return_id}/receive")

    response = admin(
        f"{shipped_order}/returns/{return_id}/inspect",
        {"accepted": [{"sku": "MUG-1", "quantity": 2}]},
    )

    assert problem(response, 422)["type"] == "/problems/exceeds-returned"


def test_every_bad_field_of_an_inspection_is_listed(
    shipped_order: str, request_return: Poster, admin: Poster
) -> None:
    return_id = request_return(shipped_order).get_json()["return_id"]

    response = admin(
        f"{shipped_order}/returns/{return_id}/inspect",
        {"accepted": [{"sku": "MUG-1", "quantity": 0}], "note": "n" * 501},
    )

    errors = problem(response, 422)["errors"]
    assert set(errors) == {"accepted", "note"}


@pytest.mark.parametrize("action", ["receive", "inspect"])
def test_an_unknown_return_is_not_found(shipped_order: str, admin: Poster, action: str) -> None:
    body: dict[str, Any] | None = {"accepted": []} if action == "inspect" else None

    problem(admin(f"{shipped_order}/returns/{uuid.uuid4()}/{action}", body), 404)


def test_returns_of_an_unknown_order_are_not_found(admin: Poster) -> None:
    problem(admin(f"{uuid.uuid4()}/returns", body_of()), 404)


def test_customers_cannot_receive_returns(
    client: FlaskClient, customer: Customer, shipped_order: str, request_return: Poster
) -> None:
    return_id = request_return(shipped_order).get_json()["return_id"]

    response = client.post(
        f"/admin/api/orders/{shipped_order}/returns/{return_id}/receive",
        headers=customer.headers,
    )

    problem(response, 403)
