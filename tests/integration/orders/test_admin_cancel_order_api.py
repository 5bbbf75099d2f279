"""POST /admin/api/orders/<id>/cancel: the admin cancels any order, recorded as the actor."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from config.bootstrap import Application
from kernel.event_store import Checkpoint
from kernel.messages import Event
from kernel.results import Success
from orders.commands import ShipOrder
from orders.events import CancelledBy, OrderCancelled
from tests.integration.orders.support import Placer, problem
from tests.support.api_client import Customer


@pytest.fixture
def cancel(client: FlaskClient, admin_headers: dict[str, str]) -> Callable[..., TestResponse]:
    def post(
        order_id: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> TestResponse:
        return client.post(
            f"/admin/api/orders/{order_id}/cancel",
            json={"reason": "customer called"} if body is None else body,
            headers=admin_headers if headers is None else headers,
        )

    return post


def _last(application: Application, order_id: str) -> Any:
    with application.engine.connect() as conn:
        return application.store.read_stream(conn, f"order-{order_id}")[-1]


@pytest.mark.parametrize("confirmed", [False, True])
def test_the_admin_cancels_a_pending_or_confirmed_order(
    application: Application,
    customer: Customer,
    place_order: Placer,
    confirmed_order: str,
    cancel: Callable[..., TestResponse],
    confirmed: bool,
) -> None:
    order_id = confirmed_order if confirmed else place_order(customer).get_json()["order_id"]

    response = cancel(order_id)

    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["order_id"] == order_id
    Checkpoint.parse(body["consistency_token"])
    recorded = _last(application, order_id)
    previous = "confirmed" if confirmed else "pending"
    assert recorded.event == OrderCancelled(
        order_id, "customer called", CancelledBy.ADMIN, previous
    )
    assert recorded.metadata.actor == "admin:bootstrap"


def test_cancelling_a_cancelled_order_again_changes_nothing(
    confirmed_order: str,
    cancel: Callable[..., TestResponse],
    stream: Callable[[str], list[Event]],
) -> None:
    assert cancel(confirmed_order).status_code == 202
    before = stream(f"order-{confirmed_order}")

    assert cancel(confirmed_order, {"reason": "again"}).status_code == 202

    assert stream(f"order-{confirmed_order}") == before


def test_a_shipped_order_cannot_be_cancelled(
    application: Application,
    confirmed_order: str,
    cancel: Callable[..., TestResponse],
    count_events: Callable[[str], int],
) -> None:
    shipped = application.bus.dispatch(ShipOrder(confirmed_order, "TRACK-1"))
    assert isinstance(shipped, Success)

    body = problem(cancel(confirmed_order), 409)

    assert body["type"] == "/problems/order-not-cancellable"
    assert "shipped" in body["detail"]
    assert count_events("OrderCancelled") == 0


def test_cancelling_an_unknown_order_is_not_found(cancel: Callable[..., TestResponse]) -> None:
    problem(cancel(str(uuid.uuid4())), 404)
    problem(cancel("not-an-order-id"), 404)


@pytest.mark.parametrize(
    "body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}, {"reason": 7}]
)
def test_a_reason_of_1_to_500_characters_is_required(
    confirmed_order: str,
    cancel: Callable[..., TestResponse],
    count_events: Callable[[str], int],
    body: dict[str, Any],
) -> None:
    problem_body = problem(cancel(confirmed_order, body), 422)

    assert list(problem_body["errors"]) == ["reason"]
    assert count_events("OrderCancelled") == 0


def test_unknown_fields_are_named(
    confirmed_order: str, cancel: Callable[..., TestResponse]
) -> None:
    body = problem(cancel(confirmed_order, {"reason": "ok", "cancelled_by": "customer"}), 422)

    assert list(body["errors"]) == ["cancelled_by"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer forged"}])
def test_cancelling_as_admin_needs_a_valid_token(
    confirmed_order: str,
    cancel: Callable[..., TestResponse],
    count_events: Callable[[str], int],
    headers: dict[str, str],
) -> None:
    response = cancel(confirmed_order, headers=headers)

    problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert count_events("OrderCancelled") == 0


@pytest.mark.parametrize("body", [{"reason": "mine"}, {}])
def test_a_customer_cannot_use_the_admin_cancel_even_for_their_own_order(
    confirmed_order: str,
    customer: Customer,
    cancel: Callable[..., TestResponse],
    count_events: Callable[[str], int],
    body: dict[str, Any],
) -> None:
    problem(cancel(confirmed_order, body, headers=customer.headers), 403)

    assert count_events("OrderCancelled") == 0


def test_the_admin_cancel_endpoint_is_documented(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()

    operation = spec["paths"]["/admin/api/orders/{order_id}/cancel"]["post"]
    assert set(operation["responses"]) >= {"202", "401", "403", "404", "409", "422"}
    assert operation["security"] == [{"bearer": []}]
    for status in ("401", "403", "404", "409", "422"):
        response = operation["responses"][status]
        if "$ref" in response:  # flask-smorest's own 422, shared by every endpoint
            response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        assert "application/problem+json" in response["content"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]
    assert request == {"$ref": "#/components/schemas/CancelOrder"}
