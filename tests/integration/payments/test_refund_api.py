from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from config.bootstrap import Application
from kernel.event_store import Checkpoint
from kernel.money import Money
from payments.commands import ProcessPayment
from payments.events import PaymentRefunded
from tests.integration.payments.conftest import payment_events

EUR_10 = Money(1000, "EUR")
URL = "/admin/api/orders/o-1/refund"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status
    return body


def test_an_admin_refunds_a_paid_order(
    client: FlaskClient, application: Application, admin_headers: dict[str, str]
) -> None:
    application.bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_visa"))

    response = client.post(URL, json={"reason": "damaged in transit"}, headers=admin_headers)

    assert response.status_code == 202
    body = response.get_json()
    assert body["order_id"] == "o-1"
    Checkpoint.parse(body["consistency_token"])
    refunded = payment_events(application, "o-1")[-1]
    assert isinstance(refunded, PaymentRefunded)
    assert refunded.reason == "damaged in transit"
    with application.engine.connect() as conn:
        assert application.store.read_stream(conn, "payment-o-1")[-1].metadata.actor == "admin"


def test_refunding_again_is_accepted_and_changes_nothing(
    client: FlaskClient, application: Application, admin_headers: dict[str, str]
) -> None:
    application.bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_visa"))
    client.post(URL, json={"reason": "damaged"}, headers=admin_headers)

    response = client.post(URL, json={"reason": "damaged"}, headers=admin_headers)

    assert response.status_code == 202
    assert len(payment_events(application, "o-1")) == 2


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer forged"}])
def test_a_refund_needs_a_valid_token(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.post(URL, json={"reason": "damaged"}, headers=headers)

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("body", [{"reason": "damaged"}, {}])
def test_a_customer_cannot_refund_even_before_validation(
    client: FlaskClient, application: Application, body: dict[str, str]
) -> None:
    application.bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_visa"))
    headers = {"Authorization": f"Bearer {application.authenticator.issue('c-1')}"}

    response = client.post(URL, json=body, headers=headers)

    assert_problem(response, 403)
    assert len(payment_events(application, "o-1")) == 1


def test_refunding_an_order_without_payment_is_404(
    client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    response = client.post(URL, json={"reason": "damaged"}, headers=admin_headers)

    assert_problem(response, 404)


@pytest.mark.parametrize("token", ["tok_declined", "tok_async"])
def test_refunding_an_unpaid_order_is_409(
    client: FlaskClient, application: Application, admin_headers: dict[str, str], token: str
) -> None:
    application.bus.dispatch(ProcessPayment("o-1", EUR_10, token))

    response = client.post(URL, json={"reason": "damaged"}, headers=admin_headers)

    body = assert_problem(response, 409)
    assert body["type"] == "/problems/payment-not-refundable"
    assert len(payment_events(application, "o-1")) == 1


@pytest.mark.parametrize(
    "body", [{}, {"reason": ""}, {"reason": "x" * 501}, {"reason": 7}, {"reason": None}]
)
def test_a_refund_needs_a_reason_of_1_to_500_characters(
    client: FlaskClient,
    application: Application,
    admin_headers: dict[str, str],
    body: dict[str, Any],
) -> None:
    application.bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_visa"))

    response = client.post(URL, json=body, headers=admin_headers)

    problem = assert_problem(response, 422)
    assert list(problem["errors"]) == ["reason"]
    assert len(payment_events(application, "o-1")) == 1


def test_a_reason_of_500_characters_is_accepted(
    client: FlaskClient, application: Application, admin_headers: dict[str, str]
) -> None:
    application.bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_visa"))

    response = client.post(URL, json={"reason": "x" * 500}, headers=admin_headers)

    assert response.status_code == 202


def test_the_refund_endpoint_is_documented(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()

    operation = spec["paths"]["/admin/api/orders/{order_id}/refund"]["post"]
    assert set(operation["responses"]) >= {"202", "401", "403", "404", "409", "422"}
    assert operation["security"] == [{"bearer": []}]
    for status in ("401", "403", "404", "409"):
        assert "application/problem+json" in operation["responses"][status]["content"]
    reason = spec["components"]["schemas"]["RefundPayment"]["properties"]["reason"]
    assert (reason["minLength"], reason["maxLength"]) == (1, 500)
