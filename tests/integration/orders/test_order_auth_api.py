from __future__ import annotations

import dataclasses
import secrets
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from config.bootstrap import Application
from config.flask_app import create_app
from kernel.auth import Authenticator, CustomerTokens
from tests.integration.orders.support import order_body, problem
from tests.support.api_client import Customer

ORDER_ID = str(uuid.uuid4())
CUSTOMER_ENDPOINTS = [
    ("/api/orders", order_body()),
    (f"/api/orders/{ORDER_ID}/cancel", {"reason": "Changed my mind"}),
]
SHIP = (f"/admin/api/orders/{ORDER_ID}/ship", {"tracking_number": "T-1"})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(("path", "body"), [*CUSTOMER_ENDPOINTS, SHIP])
def test_no_token_is_unauthorized(client: FlaskClient, path: str, body: dict[str, Any]) -> None:
    response = client.post(path, json=body)

    problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("path", "body"), CUSTOMER_ENDPOINTS)
def test_a_forged_token_is_unauthorized(
    client: FlaskClient, customer: Customer, path: str, body: dict[str, Any]
) -> None:
    forged = secrets.token_urlsafe(32)  # as a real one looks, but no session's

    response = client.post(path, json=body, headers=_bearer(forged))

    assert problem(response, 401)["detail"] == "The token is not valid."


@pytest.mark.parametrize(("path", "body"), CUSTOMER_ENDPOINTS)
def test_an_expired_token_is_unauthorized(
    client: FlaskClient,
    application: Application,
    customer: Customer,
    path: str,
    body: dict[str, Any],
) -> None:
    with application.engine.begin() as conn:  # as if its access token were 15 minutes old
        conn.execute(text("UPDATE customer_sessions SET access_expires_at = now()"))

    response = client.post(path, json=body, headers=customer.headers)

    assert problem(response, 401)["detail"] == "The token has expired."


@pytest.mark.parametrize(("path", "body"), CUSTOMER_ENDPOINTS)
def test_the_admin_token_cannot_act_as_a_customer(
    client: FlaskClient, admin_headers: dict[str, str], path: str, body: dict[str, Any]
) -> None:
    problem(client.post(path, json=body, headers=admin_headers), 403)


def test_a_customer_token_cannot_ship(client: FlaskClient, customer: Customer) -> None:
    path, body = SHIP

    problem(client.post(path, json=body, headers=customer.headers), 403)


@pytest.mark.parametrize(("path", "body"), [*CUSTOMER_ENDPOINTS, SHIP])
def test_credentials_are_checked_before_the_body(
    client: FlaskClient, path: str, body: dict[str, Any]
) -> None:
    problem(client.post(path, json={"unexpected": True}), 401)


class CountingTokens:
    """The application's customer tokens, counting the lookups (each a database query)."""

    def __init__(self, inner: CustomerTokens) -> None:
        self.inner = inner
        self.lookups = 0

    def customer_for(self, token: str) -> str:
        self.lookups += 1
        return self.inner.customer_for(token)


def test_a_customer_token_is_looked_up_once_per_request(
    application: Application, customer: Customer
) -> None:
    """Placing an order asks who calls three times (rate limit, guard, view): one lookup."""
    counting = CountingTokens(application.accounts)
    authenticator = Authenticator(application.settings.admin_token or "", counting)
    app = create_app(dataclasses.replace(application, authenticator=authenticator))
    app.testing = True
    client = app.test_client()

    placed = client.post("/api/orders", json=order_body(), headers=customer.headers)
    listed = client.get("/api/orders", headers=customer.headers)

    assert (placed.status_code, listed.status_code) == (202, 200)
    assert counting.lookups == 2
