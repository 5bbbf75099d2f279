"""With no worker, a query given a consistency token waits only up to the bound, then
answers with what it has, marked stale (a document it lacks is "not visible yet", not
"not found"); a malformed token, or one naming no event, is a 422 problem at once."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config.bootstrap import Application, bootstrap
from config.flask_app import create_app
from config.settings import Settings
from tests.support.event_log import event_count
from tests.support.shop import CATALOG, PASSWORD, Shop

BOUND = 0.2


@pytest.fixture
def impatient(settings: Settings) -> Iterator[tuple[Application, Flask]]:
    application = bootstrap(dataclasses.replace(settings, read_wait_timeout=BOUND))
    app = create_app(application)
    app.testing = True
    yield application, app
    application.close()


def _customer(client: FlaskClient) -> dict[str, str]:
    response = client.post(
        "/api/customers", json={"email": "ada@example.com", "name": "Ada", "password": PASSWORD}
    )
    assert response.status_code == 201
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


def _place(client: FlaskClient, headers: dict[str, str]) -> dict[str, str]:
    body = {
        "lines": [{"sku": "MUG-1", "quantity": 2}],
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "1 Main St",
            "city": "London",
            "postal_code": "SW1Y 4JH",
            "country": "GB",
        },
        "payment": {"token": "pm_card_visa"},
    }
    response = client.post("/api/orders", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    placed: dict[str, str] = response.get_json()
    return placed


def _placed_order(
    impatient: tuple[Application, Flask],
) -> tuple[FlaskClient, dict[str, str], dict[str, str]]:
    """A customer's client, headers and order placed with no worker to apply it."""
    application, app = impatient
    Shop(application.bus).add_products(CATALOG)
    client = app.test_client()
    headers = _customer(client)
    return client, headers, _place(client, headers)


def test_a_query_waits_for_its_token_only_up_to_the_bound_then_answers_stale(
    impatient: tuple[Application, Flask],
) -> None:
    application = impatient[0]
    client, headers, placed = _placed_order(impatient)
    behind = event_count(application)  # nothing applied them: no worker runs

    started = time.monotonic()
    response = client.get(
        f"/api/orders?consistency_token={placed['consistency_token']}", headers=headers
    )
    waited = time.monotonic() - started

    assert response.status_code == 200
    body = response.get_json()
    assert body["items"] == []
    assert body["read_model"]["stale"] is True
    assert body["read_model"]["lag_events"] == behind
    assert response.headers["X-Read-Model-Stale"] == "true"
    assert response.headers["X-Read-Model-Lag"] == str(behind)
    assert BOUND <= waited < BOUND + 10  # it waited for the bound, and not for ever

    response = client.get(
        f"/api/orders/{placed['order_id']}",
        headers=headers | {"X-Consistency-Token": placed["consistency_token"]},
    )
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert response.get_json()["type"] == "/problems/not-visible-yet"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-Read-Model-Stale"] == "true"

    response = client.get(f"/api/orders/{uuid.uuid4()}", headers=headers)  # no token: no wait
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"

    response = client.get("/api/orders", headers=headers)  # no token: no wait, not stale
    assert response.status_code == 200
    assert response.get_json()["read_model"]["stale"] is False
    assert "X-Read-Model-Stale" not in response.headers
    assert response.headers["X-Read-Model-Lag"] == str(behind)


def test_a_synchronous_read_model_has_a_commands_write_at_once(
    impatient: tuple[Application, Flask],
) -> None:
    application, app = impatient
    client = app.test_client()
    token = Shop(application.bus).do(CATALOG[0]).consistency_token

    response = client.get(f"/api/products?consistency_token={token}")

    assert response.status_code == 200
    body = response.get_json()
    assert [item["sku"] for item in body["items"]] == ["MUG-1"]
    assert body["read_model"] == {
        "name": "catalog",
        "lag_events": 0,
        "lag_seconds": 0.0,
        "stale": False,
    }
    assert "X-Read-Model-Stale" not in response.headers


@pytest.mark.parametrize(
    ("query", "header"),
    [("abc", None), ("1.2.3.4", None), ("-1.5", None), (None, "1.2.64"), (None, "12")],
)
def test_a_malformed_consistency_token_is_a_422_problem(
    client: FlaskClient,
    admin_headers: dict[str, str],
    query: str | None,
    header: str | None,
) -> None:
    path = "/admin/api/orders" + (f"?consistency_token={query}" if query else "")
    headers = admin_headers | ({"X-Consistency-Token": header} if header else {})

    response = client.get(path, headers=headers)

    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 422
    assert "consistency_token" in body["errors"]


def test_a_token_naming_no_event_is_refused_at_once(
    impatient: tuple[Application, Flask],
) -> None:
    client, headers, placed = _placed_order(impatient)
    tx, position, slot = (int(part) for part in placed["consistency_token"].split("."))
    forged = [
        "99999999999999999999.1",  # beyond any bigint
        f"{tx}.{position + 1000}",  # beyond the log's head
        f"{tx + 1000}.{position}.{slot}",  # no such transaction
        f"{tx}.{position}.{(slot + 1) % 64}",  # the event is in another slot
    ]

    for token in forged:
        for path in ("/api/orders", f"/api/orders/{placed['order_id']}"):
            started = time.monotonic()
            response = client.get(f"{path}?consistency_token={token}", headers=headers)
            assert time.monotonic() - started < BOUND, token  # no wait at all
            assert response.status_code == 422, token
            assert response.content_type == "application/problem+json"
            assert "consistency_token" in response.get_json()["errors"]
