"""The session cache in Redis in front of `customer_sessions`: a live token is answered
from Redis, and every way a session ends stops its token at once, however the cache and
PostgreSQL interleave; without Redis, PostgreSQL answers alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import text

from config.bootstrap import Application
from kernel.auth import AuthError, token_digest
from orders.accounts import Accounts
from orders.commands import ForgetCustomer
from orders.passwords import Passwords
from orders.session_cache import REVOKED, SECONDS, SessionCache
from tests.support.api_client import Customer
from tests.support.shop import PASSWORD

EMAIL = "ada@example.com"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _session(client: FlaskClient) -> dict[str, Any]:
    response = client.post("/api/sessions", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def _status(client: FlaskClient, token: str) -> int:
    return client.get("/api/orders", headers=_bearer(token)).status_code


def _cached(application: Application, token: str) -> bytes | str | None:
    return application.redis.get(f"shop:session:{token_digest(token).hex()}")


@pytest.fixture
def customer(register_customer: Callable[..., Customer]) -> Customer:
    return register_customer(email=EMAIL)


def test_a_live_session_is_remembered_no_longer_than_its_access_token_lives(
    application: Application, client: FlaskClient, customer: Customer
) -> None:
    token = _session(client)["access_token"]
    assert _cached(application, token) is None

    assert _status(client, token) == 200

    assert _cached(application, token) == customer.customer_id.encode()
    key = f"shop:session:{token_digest(token).hex()}"
    assert 0 < application.redis.pttl(key) <= SECONDS * 1000
    members = application.redis.smembers(f"shop:sessions-of:{customer.customer_id}")
    assert token_digest(token).hex().encode() in members


def test_a_cached_session_answers_without_asking_postgresql(
    application: Application, client: FlaskClient, customer: Customer
) -> None:
    token = _session(client)["access_token"]
    assert _status(client, token) == 200
    with application.engine.begin() as conn:  # not a revocation: only the cache can answer
        conn.execute(
            text("DELETE FROM customer_sessions WHERE access_hash = :h"),
            {"h": token_digest(token)},
        )

    assert _status(client, token) == 200

    application.redis.delete(f"shop:session:{token_digest(token).hex()}")
    assert _status(client, token) == 401


def test_signing_out_renewing_and_changing_the_password_stop_cached_tokens(
    application: Application, client: FlaskClient, customer: Customer
) -> None:
    signed_out, renewed, other = _session(client), _session(client), _session(client)
    for session in (signed_out, renewed, other):
        assert _status(client, session["access_token"]) == 200  # now cached

    client.delete("/api/sessions/current", headers=_bearer(signed_out["access_token"]))
    renewal = client.post("/api/sessions/renew", json={"refresh_token": renewed["refresh_token"]})
    assert renewal.status_code == 200
    assert _status(client, renewal.get_json()["access_token"]) == 200
    change = client.post(
        "/api/me/password",
        json={"current_password": PASSWORD, "new_password": "another long passphrase"},
        headers=_bearer(renewal.get_json()["access_token"]),
    )
    assert change.status_code == 204, change.get_json()

    for ended in (signed_out, renewed, other):
        assert _cached(application, ended["access_token"]) == REVOKED.encode()
        assert _status(client, ended["access_token"]) == 401
    assert _status(client, renewal.get_json()["access_token"]) == 200


def test_a_lookup_that_read_the_session_before_it_ended_cannot_revive_it(
    application: Application, client: FlaskClient, customer: Customer
) -> None:
    token = _session(client)["access_token"]
    cache = SessionCache(application.redis)
    digest = token_digest(token)

    client.delete("/api/sessions/current", headers=_bearer(token))
    # What a lookup that read the live row a moment before the sign-out writes late:
    cache.remember(digest, customer.customer_id, live_for=60)

    assert cache.lookup(digest) == REVOKED
    assert _status(client, token) == 401


def test_forgetting_a_customer_stops_their_cached_tokens(
    application: Application, client: FlaskClient, customer: Customer
) -> None:
    sessions = [_session(client)["access_token"] for _ in range(2)]
    for token in sessions:
        assert _status(client, token) == 200

    forgotten = application.bus.dispatch(ForgetCustomer(customer.customer_id))
    assert forgotten.ok, forgotten

    for token in sessions:
        assert _cached(application, token) == REVOKED.encode()
        assert _status(client, token) == 401


def test_without_redis_postgresql_answers_alone(
    application: Application, client: FlaskClient, customer: Customer
) -> None:
    unreachable = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    accounts = Accounts(
        application.engine,
        Passwords(),
        access_ttl=60,
        refresh_ttl=60,
        cache=SessionCache(unreachable),
    )
    tokens = accounts.sign_in(EMAIL, PASSWORD)
    assert tokens is not None

    assert accounts.customer_for(tokens.access_token) == customer.customer_id
    accounts.sign_out(tokens.access_token)  # the tombstone fails; PostgreSQL still ends it
    with pytest.raises(AuthError, match="revoked"):
        accounts.customer_for(tokens.access_token)
