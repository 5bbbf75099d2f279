"""POST /admin/api/orders/<id>/refund: the refund is recorded as asked for at once (202);
a payments worker then makes it at the provider."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stripe
from flask.testing import FlaskClient

from config.bootstrap import Application
from kernel.event_store import Checkpoint
from payments.domain import refund_key
from payments.events import PaymentRefunded, RefundRequested
from tests.integration.payments.conftest import (
    EUR_10,
    paid,
    payment_events,
    payment_history,
    queued_calls,
    refunds_of,
    request_payment,
    settle,
)
from tests.support.api_client import Customer
from tests.support.payments import settle_payments


def url(order_id: str) -> str:
    return f"/admin/api/orders/{order_id}/refund"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status
    return body


def test_an_admin_refund_is_asked_for_at_once_and_made_by_the_payments_worker(
    client: FlaskClient,
    application: Application,
    admin_headers: dict[str, str],
    stripe_client: stripe.StripeClient,
    order_id: str,
) -> None:
    charged = paid(application, order_id)

    response = client.post(
        url(order_id), json={"reason": "damaged in transit"}, headers=admin_headers
    )

    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["order_id"] == order_id
    Checkpoint.parse(body["consistency_token"])
    asked = payment_history(application, order_id)[-1]
    assert asked.event == RefundRequested(order_id, EUR_10, "damaged in transit", 1)
    assert asked.metadata.actor == "admin:bootstrap"
    assert refunds_of(stripe_client, charged.provider_reference) == []  # not made in the request

    assert settle_payments(application) == ["succeeded"]

    (made,) = refunds_of(stripe_client, charged.provider_reference)
    assert made["amount"] == 1000
    assert payment_events(application, order_id)[-1] == PaymentRefunded(
        order_id, EUR_10, "damaged in transit", made["id"], "", True, EUR_10
    )


def test_the_refund_call_is_queued_for_the_payments_workers(
    client: FlaskClient, application: Application, admin_headers: dict[str, str], order_id: str
) -> None:
    paid(application, order_id)

    client.post(url(order_id), json={"reason": "damaged"}, headers=admin_headers)

    assert refund_key(order_id, 1) in queued_calls(application)


@pytest.mark.parametrize("settled", [False, True])
def test_refunding_again_is_accepted_and_changes_nothing(
    client: FlaskClient,
    application: Application,
    admin_headers: dict[str, str],
    stripe_client: stripe.StripeClient,
    order_id: str,
    settled: bool,
) -> None:
    charged = paid(application, order_id)
    client.post(url(order_id), json={"reason": "damaged"}, headers=admin_headers)
    if settled:
        settle_payments(application)
    before = payment_events(application, order_id)

    response = client.post(url(order_id), json={"reason": "damaged"}, headers=admin_headers)

    assert response.status_code == 202
    assert payment_events(application, order_id) == before
    settle_payments(application)
    assert len(refunds_of(stripe_client, charged.provider_reference)) == 1


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer forged"}])
def test_a_refund_needs_a_valid_token(
    client: FlaskClient, headers: dict[str, str], order_id: str
) -> None:
    response = client.post(url(order_id), json={"reason": "damaged"}, headers=headers)

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("body", [{"reason": "damaged"}, {}])
def test_a_customer_cannot_refund_even_before_validation(
    client: FlaskClient,
    application: Application,
    register_customer: Callable[..., Customer],
    order_id: str,
    body: dict[str, str],
) -> None:
    paid(application, order_id)
    headers = register_customer("c-1@example.com").headers

    response = client.post(url(order_id), json=body, headers=headers)

    assert_problem(response, 403)
    assert len(payment_events(application, order_id)) == 2


def test_refunding_an_order_without_payment_is_404(
    client: FlaskClient, admin_headers: dict[str, str], order_id: str
) -> None:
    response = client.post(url(order_id), json={"reason": "damaged"}, headers=admin_headers)

    assert_problem(response, 404)


@pytest.mark.parametrize(
    ("payment_method", "settled"),
    [
        ("pm_card_visa", False),  # asked for, not charged yet
        ("pm_card_visa_chargeDeclined", True),
        ("pm_card_authenticationRequired", True),  # pending on 3-D Secure
    ],
)
def test_refunding_an_unpaid_order_is_409(
    client: FlaskClient,
    application: Application,
    admin_headers: dict[str, str],
    order_id: str,
    payment_method: str,
    settled: bool,
) -> None:
    request_payment(application, order_id, payment_method)
    if settled:
        settle(application, order_id)
    before = payment_events(application, order_id)

    response = client.post(url(order_id), json={"reason": "damaged"}, headers=admin_headers)

    body = assert_problem(response, 409)
    assert body["type"] == "/problems/payment-not-refundable"
    assert payment_events(application, order_id) == before


@pytest.mark.parametrize(
    "body", [{}, {"reason": ""}, {"reason": "x" * 501}, {"reason": 7}, {"reason": None}]
)
def test_a_refund_needs_a_reason_of_1_to_500_characters(
    client: FlaskClient,
    application: Application,
    admin_headers: dict[str, str],
    order_id: str,
    body: dict[str, Any],
) -> None:
    paid(application, order_id)

    response = client.post(url(order_id), json=body, headers=admin_headers)

    problem = assert_problem(response, 422)
    assert list(problem["errors"]) == ["reason"]
    assert len(payment_events(application, order_id)) == 2


def test_a_reason_of_500_characters_is_accepted(
    client: FlaskClient, application: Application, admin_headers: dict[str, str], order_id: str
) -> None:
    paid(application, order_id)

    response = client.post(url(order_id), json={"reason": "x" * 500}, headers=admin_headers)

    assert response.status_code == 202
    assert payment_events(application, order_id)[-1] == RefundRequested(
        order_id, EUR_10, "x" * 500, 1
    )


def test_the_refund_endpoint_is_documented(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()

    operation = spec["paths"]["/admin/api/orders/{order_id}/refund"]["post"]
    assert set(operation["responses"]) >= {"202", "401", "403", "404", "409", "422"}
    assert operation["security"] == [{"bearer": []}]
    for status in ("401", "403", "404", "409"):
        assert "application/problem+json" in operation["responses"][status]["content"]
    reason = spec["components"]["schemas"]["RefundPayment"]["properties"]["reason"]
    assert (reason["minLength"], reason["maxLength"]) == (1, 500)


def test_an_admin_refunds_part_under_a_name_once_and_then_the_rest(
    client: FlaskClient,
    application: Application,
    admin_headers: dict[str, str],
    stripe_client: stripe.StripeClient,
    order_id: str,
) -> None:
    charged = paid(application, order_id)  # 10.00 EUR
    goodwill = {"reason": "late delivery", "amount": {"amount": 300, "currency": "EUR"}}

    unnamed = client.post(url(order_id), json=goodwill, headers=admin_headers)
    assert list(assert_problem(unnamed, 422)["errors"]) == ["refund_id"]
    named = {**goodwill, "refund_id": "goodwill-1"}
    assert client.post(url(order_id), json=named, headers=admin_headers).status_code == 202
    assert settle_payments(application) == ["succeeded"]
    again = client.post(url(order_id), json=named, headers=admin_headers)  # a retry
    assert again.status_code == 202 and settle_payments(application) == []
    too_much = {**named, "refund_id": "goodwill-2", "amount": {"amount": 800, "currency": "EUR"}}
    assert (
        assert_problem(client.post(url(order_id), json=too_much, headers=admin_headers), 409)[
            "type"
        ]
        == "/problems/refund-exceeds-payment"
    )
    dollars = {**too_much, "amount": {"amount": 100, "currency": "USD"}}
    assert_problem(client.post(url(order_id), json=dollars, headers=admin_headers), 422)

    rest = client.post(url(order_id), json={"reason": "cancelled"}, headers=admin_headers)
    assert rest.status_code == 202 and settle_payments(application) == ["succeeded"]

    made = refunds_of(stripe_client, charged.provider_reference)
    assert sorted(refund["amount"] for refund in made) == [300, 700]
    refunded = [e for e in payment_events(application, order_id) if isinstance(e, PaymentRefunded)]
    assert [(e.amount.amount, e.refund_id, e.fully_refunded) for e in refunded] == [
        (300, "goodwill-1", False),
        (700, "", True),
    ]
