"""Signing in, renewing a session's tokens, signing out and changing the password, through
the API against the real database: a token that should stop working stops at once."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.test import TestResponse

from config.bootstrap import Application, bootstrap
from config.flask_app import create_app
from config.settings import Settings
from kernel.messages import new_id
from kernel.results import Success
from orders.commands import RegisterCustomer
from tests.integration.orders.support import problem
from tests.support.api_client import Customer
from tests.support.shop import PASSWORD
from tests.support.state import row_count

EMAIL = "ada@example.com"
NEW_PASSWORD = "a much better passphrase"
BAD_CREDENTIALS = "The email or password is wrong."


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _sign_in(client: FlaskClient, email: str = EMAIL, password: str = PASSWORD) -> TestResponse:
    return client.post("/api/sessions", json={"email": email, "password": password})


def _session(client: FlaskClient, email: str = EMAIL, password: str = PASSWORD) -> dict[str, Any]:
    response = _sign_in(client, email, password)
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def _renew(client: FlaskClient, refresh_token: str) -> TestResponse:
    return client.post("/api/sessions/renew", json={"refresh_token": refresh_token})


def _works(client: FlaskClient, access_token: str) -> bool:
    """Whether the access token is let in (to the customer's order list); any answer
    but 200 or 401 fails the test."""
    response = client.get("/api/orders", headers=_bearer(access_token))
    assert response.status_code in (200, 401), response.get_json()
    return response.status_code == 200


def _change_password(
    client: FlaskClient, access_token: str, current: str, new: str = NEW_PASSWORD
) -> TestResponse:
    body = {"current_password": current, "new_password": new}
    return client.post("/api/me/password", json=body, headers=_bearer(access_token))


def test_signing_in_opens_a_session_of_the_customer(
    client: FlaskClient, customer: Customer
) -> None:
    response = _sign_in(client, "ADA@Example.com")

    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["customer_id"] == customer.customer_id
    assert body["token"] == body["access_token"]
    assert body["token_type"] == "Bearer"
    assert _works(client, body["access_token"])
    assert _works(client, customer.headers["Authorization"].split()[1])  # the first goes on


@pytest.mark.parametrize(
    ("email", "password"),
    [(EMAIL, "not the password"), ("nobody@example.com", PASSWORD), (EMAIL, PASSWORD.upper())],
)
def test_a_wrong_email_or_password_gets_one_answer(
    client: FlaskClient, customer: Customer, email: str, password: str
) -> None:
    response = _sign_in(client, email, password)

    body = problem(response, 401)
    assert body["detail"] == BAD_CREDENTIALS
    assert body["type"] == "/problems/bad-credentials"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "token" not in response.get_data(as_text=True)


def test_renewing_replaces_both_tokens_and_the_old_ones_stop_working(
    client: FlaskClient, customer: Customer
) -> None:
    first = _session(client)

    response = _renew(client, first["refresh_token"])

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    renewed = response.get_json()
    assert renewed["customer_id"] == customer.customer_id
    assert {renewed["access_token"], renewed["refresh_token"]}.isdisjoint(
        {first["access_token"], first["refresh_token"]}
    )
    assert _works(client, renewed["access_token"])
    assert not _works(client, first["access_token"])
    assert _renew(client, renewed["refresh_token"]).status_code == 200


def test_a_refresh_token_presented_twice_ends_its_session(
    client: FlaskClient, customer: Customer
) -> None:
    """Whoever presents it second, the customer or someone who copied it, one of them is
    an intruder: the session ends for both."""
    first = _session(client)
    renewed = _renew(client, first["refresh_token"]).get_json()

    body = problem(_renew(client, first["refresh_token"]), 401)

    assert body["type"] == "/problems/session-over"
    assert not _works(client, renewed["access_token"])
    problem(_renew(client, renewed["refresh_token"]), 401)
    assert _sign_in(client).status_code == 201  # signing in again is the way back


def test_an_access_token_is_no_refresh_token(client: FlaskClient, customer: Customer) -> None:
    session = _session(client)

    problem(_renew(client, session["access_token"]), 401)
    problem(_renew(client, "no-such-token"), 401)


def test_signing_out_ends_the_session_at_once(client: FlaskClient, customer: Customer) -> None:
    ending, other = _session(client), _session(client)

    response = client.delete("/api/sessions/current", headers=_bearer(ending["access_token"]))

    assert response.status_code == 204
    assert not _works(client, ending["access_token"])
    revoked = client.get("/api/orders", headers=_bearer(ending["access_token"]))
    assert problem(revoked, 401)["detail"] == "The token was revoked."
    problem(_renew(client, ending["refresh_token"]), 401)
    assert _works(client, other["access_token"])  # only that session ended
    again = client.delete("/api/sessions/current", headers=_bearer(ending["access_token"]))
    problem(again, 401)


def test_signing_out_needs_a_customer_token(
    client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    problem(client.delete("/api/sessions/current"), 401)
    problem(client.delete("/api/sessions/current", headers=admin_headers), 403)


def test_changing_the_password_ends_every_other_session_and_keeps_this_one(
    client: FlaskClient, customer: Customer
) -> None:
    current, other = _session(client), _session(client)
    first_token = customer.headers["Authorization"].split()[1]

    response = _change_password(client, current["access_token"], PASSWORD)

    assert response.status_code == 204
    assert _works(client, current["access_token"])
    assert _renew(client, current["refresh_token"]).status_code == 200
    assert not _works(client, other["access_token"])
    assert not _works(client, first_token)
    problem(_renew(client, other["refresh_token"]), 401)
    assert problem(_sign_in(client), 401)["detail"] == BAD_CREDENTIALS  # the old password
    assert _sign_in(client, password=NEW_PASSWORD).status_code == 201


def test_a_wrong_current_password_changes_nothing(client: FlaskClient, customer: Customer) -> None:
    current, other = _session(client), _session(client)

    response = _change_password(client, current["access_token"], "not the password")

    body = problem(response, 422)
    assert body["type"] == "/problems/wrong-password"
    assert set(body["errors"]) == {"current_password"}
    assert _works(client, current["access_token"]) and _works(client, other["access_token"])
    assert _sign_in(client).status_code == 201
    problem(_sign_in(client, password=NEW_PASSWORD), 401)


def test_changing_the_password_needs_a_customer_token_before_the_body_is_read(
    client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    problem(client.post("/api/me/password", json={}), 401)
    problem(client.post("/api/me/password", json={}, headers=admin_headers), 403)


@pytest.mark.parametrize(
    ("path", "payload", "fields"),
    [
        ("/api/sessions", {}, {"email", "password"}),
        ("/api/sessions", {"email": "not-an-email", "password": PASSWORD}, {"email"}),
        ("/api/sessions", {"email": EMAIL, "password": ""}, {"password"}),
        ("/api/sessions", {"email": EMAIL, "password": "p" * 257}, {"password"}),
        ("/api/sessions", {"email": EMAIL, "password": PASSWORD, "remember": 1}, {"remember"}),
        ("/api/sessions/renew", {}, {"refresh_token"}),
        ("/api/sessions/renew", {"refresh_token": 42}, {"refresh_token"}),
        ("/api/sessions/renew", {"refresh_token": "r" * 101}, {"refresh_token"}),
        ("/api/me/password", {}, {"current_password", "new_password"}),
        ("/api/me/password", {"current_password": PASSWORD, "new_password": "short"},
         {"new_password"}),
        ("/api/me/password", {"current_password": PASSWORD, "new_password": "n" * 257},
         {"new_password"}),
    ],
)  # fmt: skip
def test_bad_input_is_a_problem_naming_every_bad_field(
    client: FlaskClient, customer: Customer, path: str, payload: dict[str, Any], fields: set[str]
) -> None:
    response = client.post(path, json=payload, headers=customer.headers)

    body = problem(response, 422)
    assert set(body["errors"]) == fields
    assert PASSWORD not in response.get_data(as_text=True)


@pytest.fixture
def short_lived(settings: Settings) -> Iterator[Flask]:
    """The API with ACCESS_TOKEN_TTL=1 and REFRESH_TOKEN_TTL=2 (seconds)."""
    application = bootstrap(dataclasses.replace(settings, access_token_ttl=1, refresh_token_ttl=2))
    app = create_app(application)
    app.testing = True
    yield app
    application.close()


def test_tokens_expire_after_their_time_to_live(
    short_lived: Flask, register_customer: Callable[..., Customer]
) -> None:
    register_customer()
    client = short_lived.test_client()
    session = _session(client)
    assert session["expires_in"] == 1 and session["refresh_expires_in"] == 2
    assert _works(client, session["access_token"])

    time.sleep(1.2)
    expired = client.get("/api/orders", headers=_bearer(session["access_token"]))
    assert problem(expired, 401)["detail"] == "The token has expired."
    renewed = _renew(client, session["refresh_token"]).get_json()  # within its 2 s
    assert _works(client, renewed["access_token"])

    time.sleep(2.2)
    problem(_renew(client, renewed["refresh_token"]), 401)


def test_the_openapi_document_describes_the_account_endpoints(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]

    expected = {
        ("/api/customers", "post"): {"201", "409", "422", "429"},
        ("/api/sessions", "post"): {"201", "401", "422", "429"},
        ("/api/sessions/renew", "post"): {"200", "401", "422"},
        ("/api/sessions/current", "delete"): {"204", "401", "403"},
        ("/api/me/password", "post"): {"204", "401", "403", "409", "422", "429"},
    }
    for (path, method), statuses in expected.items():
        operation = paths[path][method]
        assert statuses <= set(operation["responses"]), (path, method)
        assert ("security" in operation) == ("403" in statuses), (path, method)
    created = paths["/api/sessions"]["post"]["responses"]["201"]
    schema = created["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    components = client.get("/openapi.json").get_json()["components"]["schemas"]
    assert {"access_token", "token", "token_type", "expires_in", "refresh_token"} <= set(
        components[schema]["properties"]
    )


def test_sessions_over_for_a_day_are_forgotten_and_live_ones_kept(
    client: FlaskClient, application: Application, customer: Customer
) -> None:
    ended, renewed, live = _session(client), _session(client), _session(client)
    client.delete("/api/sessions/current", headers=_bearer(ended["access_token"]))
    _renew(client, renewed["refresh_token"])
    accounts = application.accounts

    assert accounts.forget_ended_sessions() == 0  # ended, but only just
    with application.engine.begin() as conn:  # as if a day and a minute had passed
        conn.execute(
            text(
                "UPDATE customer_sessions SET refresh_expires_at = refresh_expires_at"
                " - interval '1 day 1 minute' WHERE revoked_at IS NOT NULL"
            )
        )
    assert accounts.forget_ended_sessions() == 1

    # Left: the registration's session, the renewed one and the live one.
    assert row_count(application.engine, "customer_sessions") == 3
    assert problem(client.get("/api/orders", headers=_bearer(ended["access_token"])), 401)
    assert _works(client, live["access_token"])


def test_a_password_hashed_with_weaker_parameters_is_rehashed_at_sign_in(
    client: FlaskClient, application: Application
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    customer_id = new_id()
    registered = application.bus.dispatch(RegisterCustomer(customer_id, EMAIL, "Ada", weak))
    assert isinstance(registered, Success), registered

    _session(client)

    with application.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT password_hash FROM customer_accounts WHERE customer_id = :id"),
            {"id": customer_id},
        ).scalar_one()
    assert stored != weak
    assert not application.accounts.passwords.outdated(stored)
    assert _sign_in(client).status_code == 201  # the same password, under the new hash
