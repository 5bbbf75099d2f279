"""GET /api/orders/<id>/payment: a customer's payment and, while Stripe waits on them
(3-D Secure), what they must do, asked of Stripe at each request."""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

import config.jobs
from config.bootstrap import Application
from config.jobs import Jobs
from config.settings import Settings
from tests.integration.payments.conftest import unanswered
from tests.integration.sagas.support import settle
from tests.support.api_client import Customer
from tests.support.shop import ADDRESS_DATA, CATALOG, Shop


@pytest.fixture(autouse=True)
def jobs(application: Application, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(config.jobs, "_served", Jobs(application))
    Shop(application.bus).add_products(CATALOG)
    yield


def place(client: FlaskClient, customer: Customer, payment_method: str) -> str:
    body = {
        "lines": [{"sku": "MUG-1", "quantity": 1}],
        "shipping_address": ADDRESS_DATA,
        "payment": {"token": payment_method},
    }
    response = client.post("/api/orders", json=body, headers=customer.headers)
    assert response.status_code == 202, response.get_json()
    order_id: str = response.get_json()["order_id"]
    return order_id


def payment(client: FlaskClient, order_id: str, headers: dict[str, str]) -> Any:
    return client.get(f"/api/orders/{order_id}/payment", headers=headers)


def authenticate_in_browser(settings: Settings, intent_id: str, client_secret: str) -> Any:
    """What Stripe.js does with the client secret once the customer has authenticated:
    only the publishable key and the secret the API handed out."""
    form = {"client_secret": client_secret, "success": "true", "key": "pk_test_storefront"}
    request = urllib.request.Request(
        f"{settings.stripe_api_base}/v1/payment_intents/{intent_id}/_authenticate",
        data=urllib.parse.urlencode(form).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_a_3d_secure_payment_hands_its_customer_the_client_secret_until_it_is_paid(
    client: FlaskClient,
    application: Application,
    settings: Settings,
    register_customer: Callable[..., Customer],
) -> None:
    ada = register_customer("ada@example.com")
    order_id = place(client, ada, "pm_card_authenticationRequired")
    settle(application)

    pending = payment(client, order_id, ada.headers)

    assert pending.status_code == 200, pending.get_json()
    found = pending.get_json()
    assert found["status"] == "pending"
    action = found["action"]
    assert action["provider"] == "stripe"
    assert action["status"] == "requires_action"
    assert action["next_action"] == "use_stripe_sdk"
    assert action["client_secret"].startswith(action["payment_intent"] + "_secret_")

    assert authenticate_in_browser(settings, action["payment_intent"], action["client_secret"])
    settle(application)  # the look-up, as reconciliation or the webhook would bring it

    paid = payment(client, order_id, ada.headers).get_json()
    assert paid["status"] == "succeeded"
    assert paid["action"] is None
    assert paid["amount"]["currency"] == "EUR"


def test_a_payment_that_needs_nothing_of_the_customer_has_no_action(
    client: FlaskClient, application: Application, register_customer: Callable[..., Customer]
) -> None:
    ada = register_customer("ada@example.com")
    order_id = place(client, ada, "pm_card_visa")
    settle(application)

    found = payment(client, order_id, ada.headers)

    assert found.status_code == 200
    assert (found.get_json()["status"], found.get_json()["action"]) == ("succeeded", None)


def test_another_customers_payment_and_an_unknown_one_are_not_found(
    client: FlaskClient,
    application: Application,
    register_customer: Callable[..., Customer],
    admin_headers: dict[str, str],
) -> None:
    ada = register_customer("ada@example.com")
    eve = register_customer("eve@example.com", "Eve")
    order_id = place(client, ada, "pm_card_authenticationRequired")
    settle(application)

    stolen = payment(client, order_id, eve.headers)
    unknown = payment(client, "3f2c9a52-4a43-4d9e-9d1c-5f0a1c2b3d4e", ada.headers)
    as_admin = payment(client, order_id, admin_headers)
    anonymous = payment(client, order_id, {})

    assert (stolen.status_code, stolen.content_type) == (404, "application/problem+json")
    assert "client_secret" not in stolen.get_data(as_text=True)
    assert unknown.status_code == 404
    assert as_admin.status_code == 403
    assert anonymous.status_code == 401


def test_a_provider_that_does_not_answer_is_a_503_to_retry(
    client: FlaskClient,
    application: Application,
    settings: Settings,
    register_customer: Callable[..., Customer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ada = register_customer("ada@example.com")
    order_id = place(client, ada, "pm_card_authenticationRequired")
    settle(application)
    monkeypatch.setattr(
        application.provider_calls, "gateway", unanswered("http://127.0.0.1:9", settings)
    )

    found = payment(client, order_id, ada.headers)

    assert (found.status_code, found.headers["Retry-After"]) == (503, "2")
    assert found.content_type == "application/problem+json"
