from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from config.bootstrap import Application
from kernel.messages import Event
from orders.domain import customer_id_for
from orders.events import CustomerRegistered
from tests.integration.orders.support import problem


def test_registering_returns_the_customer_id_and_a_token_for_it(
    client: FlaskClient, application: Application, stream: Callable[[str], list[Event]]
) -> None:
    response = client.post(
        "/api/customers", json={"email": "Ada@Example.com", "name": "Ada Lovelace"}
    )

    assert response.status_code == 201
    body = response.get_json()
    assert body["customer_id"] == customer_id_for("ada@example.com")
    principal = application.authenticator.verify(body["token"])
    assert principal.customer_id == body["customer_id"]
    assert stream(f"customer-{body['customer_id']}") == [
        CustomerRegistered(body["customer_id"], "ada@example.com", "Ada Lovelace")
    ]


def test_registering_an_email_twice_is_a_conflict(
    client: FlaskClient, stream: Callable[[str], list[Event]]
) -> None:
    client.post("/api/customers", json={"email": "ada@example.com", "name": "Ada"})

    response = client.post("/api/customers", json={"email": "ADA@Example.com", "name": "Eve"})

    body = problem(response, 409)
    assert body["type"] == "/problems/email-taken"
    assert body["detail"] == "This email cannot be registered."
    assert "ada@" not in response.get_data(as_text=True).lower()  # the address is not echoed
    assert len(stream(f"customer-{customer_id_for('ada@example.com')}")) == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "Ada"}, "email"),
        ({"email": "not-an-email", "name": "Ada"}, "email"),
        ({"email": "a" * 250 + "@example.com", "name": "Ada"}, "email"),
        ({"email": "ada@example.com"}, "name"),
        ({"email": "ada@example.com", "name": ""}, "name"),
        ({"email": "ada@example.com", "name": "   "}, "name"),
        ({"email": "ada@example.com", "name": "A" * 121}, "name"),
        ({"email": "ada@example.com", "name": "Ada", "admin": True}, "admin"),
    ],
)
def test_invalid_registrations_name_the_bad_field(
    client: FlaskClient, payload: dict[str, Any], field: str
) -> None:
    body = problem(client.post("/api/customers", json=payload), 422)

    assert field in body["errors"]
