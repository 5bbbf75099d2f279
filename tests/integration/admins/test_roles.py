"""A viewer reads everything and changes nothing: every admin route that is not a read,
in the API and in the dashboard (RQ's pages too), enumerated from the app's URL map so
that a route added later is covered as well, refuses a viewer with 403 and leaves the
shop as it was. An operator may do all of it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule, UUIDConverter

from config.bootstrap import Application
from tests.integration.admins.support import Admin, everything
from tests.integration.dashboard.support import csrf, place, settle, sign_in
from tests.support.api_client import Customer

READS = {"GET", "HEAD", "OPTIONS"}
SIGNING = {"dashboard.login", "dashboard.logout"}  # a viewer signs in and out, like anyone
ANY_FIELD = {
    "tracking_number": "1Z999AA10123456784",
    "reason": "a viewer tries",
    "quantity": 5,
    "amount": 999,
    "currency": "EUR",
    "sku": "NEW-1",
    "name": "New product",
    "price": {"amount": 100, "currency": "EUR"},
    "stock": 5,
    "confirmed": "yes",
}


def admin_rules(app: Flask) -> list[Rule]:
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/admin/") and rule.endpoint not in SIGNING
    ]


def writes(app: Flask) -> list[tuple[Rule, str]]:
    return [
        (rule, method)
        for rule in admin_rules(app)
        for method in sorted((rule.methods or set()) - READS)
    ]


def path_of(app: Flask, rule: Rule, order_id: str, method: str = "GET") -> str:
    """The rule's URL with each argument a real one where it names something: the
    confirmed order, a product, a subscription, a read model."""
    values: dict[str, Any] = {}
    for name in rule.arguments:
        converter = rule._converters.get(name)  # werkzeug keeps no public accessor
        if isinstance(converter, UUIDConverter) or name in ("order_id", "key", "job_id"):
            values[name] = order_id
        elif name == "sku":
            values[name] = "MUG-1"
        elif name == "subscription":
            values[name] = "order_detail@1"
        elif name == "name":
            values[name] = "catalog"
        elif name in ("instance_number", "page", "per_page"):
            values[name] = 0
        else:
            values[name] = "default"
    adapter = app.url_map.bind("localhost")
    return str(adapter.build(rule.endpoint, values, method=method))


@pytest.fixture
def confirmed(client: FlaskClient, application: Application, catalog: None, ada: Customer) -> str:
    order = place(client, ada, {"MUG-1": 2})
    settle(application)
    return order.order_id


def test_every_admin_change_refuses_a_viewer_and_changes_nothing(
    app: Flask,
    client: FlaskClient,
    application: Application,
    confirmed: str,
    viewer: Admin,
) -> None:
    assert sign_in(client, viewer.token).status_code == 303
    routes = writes(app)
    api = {rule.endpoint for rule, _ in routes if rule.rule.startswith("/admin/api/")}
    pages = {rule.endpoint for rule, _ in routes if rule.endpoint.startswith("dashboard.")}
    # The ones there are today, so that an enumeration gone wrong cannot pass empty.
    assert {
        "orders.ship_order", "orders.cancel_any_order", "payments.refund_payment",
        "inventory.Products", "inventory.Restock", "inventory.Price", "parked.retry",
        "parked.skip", "sagas.retry", "queries.rebuild",
    } <= api, api  # fmt: skip
    assert {
        "dashboard.orders.ship", "dashboard.orders.cancel", "dashboard.orders.refund",
        "dashboard.inventory.restock", "dashboard.inventory.price", "dashboard.parked.retry",
        "dashboard.parked.skip", "dashboard.sagas.retry", "dashboard.projections.rebuild",
    } <= pages, pages  # fmt: skip
    before = everything(application)

    for rule, method in routes:
        path = path_of(app, rule, confirmed, method)
        if rule.rule.startswith("/admin/api/"):
            response = client.open(path, method=method, json=ANY_FIELD, headers=viewer.headers)
            assert response.status_code == 403, (method, path, response.get_data(as_text=True))
            assert response.mimetype == "application/problem+json", path
            assert response.get_json()["type"] == "/problems/read-only-admin", path
        else:
            form = {k: str(v) for k, v in ANY_FIELD.items()} | {"csrf_token": csrf(client)}
            same_site = {"Origin": "http://localhost"}
            response = client.open(path, method=method, data=form, headers=same_site)
            assert response.status_code == 403, (method, path, response.status_code)
            assert "viewers see every page but change nothing" in response.get_data(as_text=True)

    assert everything(application) == before


def test_a_viewer_reads_every_admin_endpoint_and_dashboard_page(
    app: Flask,
    client: FlaskClient,
    application: Application,
    confirmed: str,
    viewer: Admin,
) -> None:
    assert sign_in(client, viewer.token).status_code == 303
    reads = [
        rule
        for rule in admin_rules(app)
        if "GET" in (rule.methods or set())
        and (rule.rule.startswith("/admin/api/") or rule.endpoint.startswith("dashboard."))
        and rule.endpoint not in ("dashboard.static",)
    ]
    assert len(reads) > 15, [rule.rule for rule in reads]
    for rule in reads:
        path = path_of(app, rule, confirmed)
        headers = viewer.headers if rule.rule.startswith("/admin/api/") else {}
        response = client.get(path, headers=headers)
        assert response.status_code not in (401, 403, 500), (path, response.status_code)
        assert "/admin/login" not in response.headers.get("Location", ""), path


def test_a_viewer_sees_no_action_forms(
    client: FlaskClient, confirmed: str, viewer: Admin, operator: Admin
) -> None:
    assert sign_in(client, viewer.token).status_code == 303
    order = client.get(f"/admin/orders/{confirmed}").get_data(as_text=True)
    assert "data-read-only" in order
    assert 'method="post"' not in order.replace('method="post" action="/admin/logout"', ""), (
        "only the sign-out form"
    )
    for path in ("/admin/inventory", "/admin/projections", "/admin/sagas", "/admin/parked"):
        html = client.get(path).get_data(as_text=True)
        assert html.count('method="post"') == 1, path  # signing out
    assert 'data-signed-in="vic"' in order and ">viewer<" in order

    assert sign_in(client, operator.token).status_code == 303
    order = client.get(f"/admin/orders/{confirmed}").get_data(as_text=True)
    assert "data-read-only" not in order
    assert 'data-action="ship"' in order
    assert 'data-signed-in="olga"' in order and ">operator<" in order
