from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from config.bootstrap import Application
from kernel.messages import Event
from orders.accounts import email_digest
from orders.events import CustomerRegistered
from tests.integration.orders.support import problem
from tests.support.shop import PASSWORD

ADA = {"email": "Ada@Example.com", "name": "Ada Lovelace", "password": PASSWORD}


def test_registering_returns_a_random_customer_id_and_a_session_for_it(
    client: FlaskClient, application: Application, stream: Callable[[str], list[Event]]
) -> None:
    response = client.post("/api/customers", json=ADA)

    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert uuid.UUID(body["customer_id"]).version == 4
    assert body["token"] == body["access_token"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == application.settings.access_token_ttl
    assert body["refresh_expires_in"] == application.settings.refresh_token_ttl
    assert body["refresh_token"] != body["access_token"]
    principal = application.authenticator.verify(body["token"])
    assert principal.customer_id == body["customer_id"]
    assert stream(f"customer-{body['customer_id']}") == [
        CustomerRegistered(body["customer_id"], "ada@example.com", "Ada Lovelace")
    ]


def test_the_account_keeps_digests_and_an_argon2_hash_never_the_email_password_or_tokens(
    client: FlaskClient, application: Application
) -> None:
    body = client.post("/api/customers", json=ADA).get_json()

    with application.engine.connect() as conn:
        account = conn.execute(text("SELECT * FROM customer_accounts")).one()
        session = conn.execute(text("SELECT * FROM customer_sessions")).one()
    assert account.customer_id == body["customer_id"]
    assert bytes(account.email_digest) == email_digest("ada@example.com")
    assert account.password_hash.startswith("$argon2id$")
    stored = repr(tuple(account)) + repr(tuple(session))
    for secret in ("ada@example.com", PASSWORD, body["access_token"], body["refresh_token"]):
        assert secret not in stored


def test_registering_an_email_twice_is_a_conflict(
    client: FlaskClient, application: Application, count_events: Callable[[str], int]
) -> None:
    client.post("/api/customers", json=ADA)

    response = client.post(
        "/api/customers", json={"email": "ADA@example.com", "name": "Eve", "password": "x" * 8}
    )

    body = problem(response, 409)
    assert body["type"] == "/problems/email-taken"
    assert body["detail"] == "This email cannot be registered."
    assert "ada@" not in response.get_data(as_text=True).lower()  # the address is not echoed
    assert count_events("CustomerRegistered") == 1
    with application.engine.connect() as conn:
        accounts = conn.execute(text("SELECT count(*) FROM customer_accounts")).scalar_one()
    assert accounts == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "Ada", "password": PASSWORD}, "email"),
        ({"email": "not-an-email", "name": "Ada", "password": PASSWORD}, "email"),
        ({"email": "a" * 250 + "@example.com", "name": "Ada", "password": PASSWORD}, "email"),
        ({"email": "ada@example.com", "password": PASSWORD}, "name"),
        ({"email": "ada@example.com", "name": "", "password": PASSWORD}, "name"),
        ({"email": "ada@example.com", "name": "   ", "password": PASSWORD}, "name"),
        ({"email": "ada@example.com", "name": "A" * 121, "password": PASSWORD}, "name"),
        ({"email": "ada@example.com", "name": "Ada"}, "password"),
        ({"email": "ada@example.com", "name": "Ada", "password": "short"}, "password"),
        ({"email": "ada@example.com", "name": "Ada", "password": "p" * 257}, "password"),
        ({"email": "ada@example.com", "name": "Ada", "password": 12345678}, "password"),
        ({"email": "ada@example.com", "name": "Ada", "password": PASSWORD, "admin": 1}, "admin"),
    ],
)
def test_invalid_registrations_name_the_bad_field(
    client: FlaskClient, payload: dict[str, Any], field: str
) -> None:
    response = client.post("/api/customers", json=payload)

    body = problem(response, 422)
    assert field in body["errors"]
    assert PASSWORD not in response.get_data(as_text=True)  # a password is never echoed
