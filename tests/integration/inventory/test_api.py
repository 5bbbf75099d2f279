"""The admin product endpoints over HTTP, with their effects in the event store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from config.bootstrap import Application
from inventory.events import PriceChanged, ProductAdded, StockReplenished
from kernel.event_store import Checkpoint
from kernel.money import Money
from tests.integration.inventory.conftest import StreamFn
from tests.support.api_client import Customer

PRODUCT = {"sku": "MUG-001", "name": "Stoneware mug", "price": {"amount": 1200, "currency": "EUR"},
           "stock": 40}  # fmt: skip
ENDPOINTS = [
    ("/admin/api/products", PRODUCT),
    ("/admin/api/products/MUG-001/restock", {"quantity": 5}),
    ("/admin/api/products/MUG-001/price", {"amount": 1500, "currency": "EUR"}),
]
Headers = dict[str, str]


def problem(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status
    return body


@pytest.fixture
def mug(client: FlaskClient, admin_headers: Headers) -> None:
    response = client.post("/admin/api/products", json=PRODUCT, headers=admin_headers)
    assert response.status_code == 202


def test_adding_a_product_is_accepted_and_stored(
    client: FlaskClient, admin_headers: Headers, stream: StreamFn
) -> None:
    response = client.post("/admin/api/products", json=PRODUCT, headers=admin_headers)

    assert response.status_code == 202
    body = response.get_json()
    assert body["sku"] == "MUG-001"
    assert Checkpoint.parse(body["consistency_token"]).position > 0
    assert stream("stock_item-MUG-001") == [
        ProductAdded("MUG-001", "Stoneware mug", Money(1200, "EUR"), 40)
    ]


def test_events_record_the_admin_as_actor(
    client: FlaskClient, admin_headers: Headers, application: Application
) -> None:
    client.post("/admin/api/products", json=PRODUCT, headers=admin_headers)

    with application.engine.connect() as conn:
        (recorded,) = application.store.read_stream(conn, "stock_item-MUG-001")
    assert recorded.metadata.actor == "admin:bootstrap"


@pytest.mark.usefixtures("mug")
def test_adding_an_existing_sku_is_a_conflict(
    client: FlaskClient, admin_headers: Headers, stream: StreamFn
) -> None:
    response = client.post("/admin/api/products", json=PRODUCT, headers=admin_headers)

    body = problem(response, 409)
    assert body["type"] == "/problems/product-exists"
    assert len(stream("stock_item-MUG-001")) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sku": "mug-001"}, "sku"),
        ({"sku": "-MUG"}, "sku"),
        ({"sku": "M"}, "sku"),
        ({"sku": "M" * 33}, "sku"),
        ({"name": ""}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"price": {"amount": -1, "currency": "EUR"}}, "price"),
        ({"price": {"amount": 10**9, "currency": "EUR"}}, "price"),
        ({"price": {"amount": 12.5, "currency": "EUR"}}, "price"),
        ({"price": {"amount": 100, "currency": "eur"}}, "price"),
        ({"price": 1200}, "price"),
        ({"stock": -1}, "stock"),
        ({"stock": 10**6 + 1}, "stock"),
        ({"stock": "5"}, "stock"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_an_invalid_product_names_the_field(
    client: FlaskClient, admin_headers: Headers, stream: StreamFn, change: Any, field: str
) -> None:
    response = client.post("/admin/api/products", json=PRODUCT | change, headers=admin_headers)

    assert field in problem(response, 422)["errors"]
    assert stream(f"stock_item-{PRODUCT['sku']}") == []


def test_every_missing_product_field_is_listed(client: FlaskClient, admin_headers: Headers) -> None:
    response = client.post("/admin/api/products", json={}, headers=admin_headers)

    assert set(problem(response, 422)["errors"]) == {"sku", "name", "price", "stock"}


@pytest.mark.usefixtures("mug")
def test_restocking_is_accepted_and_stored(
    client: FlaskClient, admin_headers: Headers, stream: StreamFn
) -> None:
    response = client.post(
        "/admin/api/products/MUG-001/restock", json={"quantity": 5}, headers=admin_headers
    )

    assert response.status_code == 202
    assert response.get_json()["sku"] == "MUG-001"
    assert stream("stock_item-MUG-001")[-1] == StockReplenished("MUG-001", 5, 45, 45)


@pytest.mark.usefixtures("mug")
@pytest.mark.parametrize("body", [{"quantity": 0}, {"quantity": 10**6 + 1}, {"quantity": "5"}, {}])
def test_an_invalid_restock_names_the_quantity(
    client: FlaskClient, admin_headers: Headers, body: Any
) -> None:
    response = client.post("/admin/api/products/MUG-001/restock", json=body, headers=admin_headers)

    assert "quantity" in problem(response, 422)["errors"]


@pytest.mark.usefixtures("mug")
def test_changing_the_price_is_accepted_and_stored(
    client: FlaskClient, admin_headers: Headers, stream: StreamFn
) -> None:
    response = client.post(
        "/admin/api/products/MUG-001/price",
        json={"amount": 1500, "currency": "EUR"},
        headers=admin_headers,
    )

    assert response.status_code == 202
    assert stream("stock_item-MUG-001")[-1] == PriceChanged("MUG-001", Money(1500, "EUR"))


@pytest.mark.usefixtures("mug")
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": -1, "currency": "EUR"}, "amount"),
        ({"amount": "15", "currency": "EUR"}, "amount"),
        ({"amount": 1500, "currency": "EURO"}, "currency"),
        ({"amount": 1500}, "currency"),
    ],
)
def test_an_invalid_price_names_the_field(
    client: FlaskClient, admin_headers: Headers, body: Any, field: str
) -> None:
    response = client.post("/admin/api/products/MUG-001/price", json=body, headers=admin_headers)

    assert field in problem(response, 422)["errors"]


@pytest.mark.usefixtures("mug")
def test_changing_the_currency_is_a_conflict(
    client: FlaskClient, admin_headers: Headers, stream: StreamFn
) -> None:
    response = client.post(
        "/admin/api/products/MUG-001/price",
        json={"amount": 1500, "currency": "USD"},
        headers=admin_headers,
    )

    assert problem(response, 409)["type"] == "/problems/currency-mismatch"
    assert len(stream("stock_item-MUG-001")) == 1


@pytest.mark.parametrize(("path", "body"), ENDPOINTS[1:])
def test_an_unknown_sku_is_not_found(
    client: FlaskClient, admin_headers: Headers, path: str, body: Any
) -> None:
    response = client.post(path.replace("MUG-001", "GHOST"), json=body, headers=admin_headers)

    problem(response, 404)


@pytest.mark.parametrize(("path", "body"), ENDPOINTS)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer forged"}], ids=["none", "bad"])
def test_without_a_valid_token_the_answer_is_401(
    client: FlaskClient, stream: StreamFn, path: str, body: Any, headers: Headers
) -> None:
    response = client.post(path, json=body, headers=headers)

    problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert stream("stock_item-MUG-001") == []


@pytest.mark.parametrize(("path", "body"), ENDPOINTS)
def test_a_customer_token_is_forbidden(
    client: FlaskClient,
    register_customer: Callable[..., Customer],
    stream: StreamFn,
    path: str,
    body: Any,
) -> None:
    response = client.post(path, json=body, headers=register_customer().headers)

    problem(response, 403)
    assert stream("stock_item-MUG-001") == []


@pytest.mark.usefixtures("mug")
@pytest.mark.parametrize(("path", "body"), ENDPOINTS)
def test_a_body_that_is_not_json_is_415(
    client: FlaskClient, admin_headers: Headers, path: str, body: Any
) -> None:
    response = client.post(
        path, data="quantity=5", content_type="text/plain", headers=admin_headers
    )

    problem(response, 415)


@pytest.mark.usefixtures("mug")
@pytest.mark.parametrize(("path", "body"), ENDPOINTS)
def test_malformed_json_is_400(
    client: FlaskClient, admin_headers: Headers, path: str, body: Any
) -> None:
    response = client.post(
        path, data='{"quantity": ', content_type="application/json", headers=admin_headers
    )

    problem(response, 400)


@pytest.mark.parametrize(("path", "body"), ENDPOINTS)
def test_the_openapi_spec_documents_every_answer(client: FlaskClient, path: str, body: Any) -> None:
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"][path.replace("MUG-001", "{sku}")]["post"]

    expected = {"202", "401", "403", "422"} | ({"409"} if "restock" not in path else set())
    expected |= {"404"} if path != "/admin/api/products" else set()
    assert expected <= set(operation["responses"])
    assert operation["security"] == [{"bearer": []}]
    for status in expected - {"202"}:
        assert "application/problem+json" in operation["responses"][status]["content"]
