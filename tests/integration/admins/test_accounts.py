"""Named admins: `shop admins create/list/rotate/disable`, tokens kept only as hashes,
each admin's commands recorded with them as the actor, rotated and disabled tokens
refused at once (by the API and in the dashboard's sessions), and ADMIN_TOKEN still
the bootstrap operator."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from config import cli
from config.bootstrap import Application
from config.settings import Settings
from tests.integration.admins.support import Admin, event_actors
from tests.integration.dashboard.support import csrf, place, settle, sign_in
from tests.support.api_client import Customer


def shop(*args: str) -> str:
    result = CliRunner().invoke(cli.main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def token_in(output: str) -> str:
    token = output.strip().splitlines()[-1]
    assert token.startswith("shop_admin_") and len(token) > 40, output
    return token


@pytest.fixture
def confirmed(client: FlaskClient, application: Application, catalog: None, ada: Customer) -> str:
    order = place(client, ada, {"MUG-1": 2})
    settle(application)
    return order.order_id


@pytest.mark.usefixtures("shop_cli")
def test_the_cli_creates_lists_rotates_and_disables_admins(
    client: FlaskClient, application: Application
) -> None:
    created = shop("admins", "create", "ada", "--role", "operator")
    token = token_in(created)
    with application.engine.connect() as conn:
        admin_id, stored = conn.execute(
            text("SELECT admin_id::text, token_hash FROM admin_accounts WHERE login = 'ada'")
        ).one()
    assert f"admin id {admin_id}" in created
    assert bytes(stored) == hashlib.sha256(token.encode()).digest(), "only the hash is kept"
    shop("admins", "create", "bob", "--role", "viewer")
    again = CliRunner().invoke(cli.main, ["admins", "create", "ada", "--role", "viewer"])
    assert again.exit_code == 1 and "exists already" in again.output
    wrong = CliRunner().invoke(cli.main, ["admins", "create", "eve", "--role", "root"])
    assert wrong.exit_code == 2

    listed = shop("admins", "list").splitlines()
    assert [line.split()[:3] for line in listed[1:]] == [
        ["ada", "operator", admin_id],
        ["bob", "viewer", listed[2].split()[2]],
    ]
    assert client.get("/admin/api/orders", headers=_bearer(token)).status_code == 200

    rotated = token_in(shop("admins", "rotate", "ada"))
    assert rotated != token
    assert client.get("/admin/api/orders", headers=_bearer(token)).status_code == 401
    assert client.get("/admin/api/orders", headers=_bearer(rotated)).status_code == 200

    assert "disabled ada" in shop("admins", "disable", "ada")
    refused = client.get("/admin/api/orders", headers=_bearer(rotated))
    assert refused.status_code == 401
    assert refused.mimetype == "application/problem+json"
    (ada,) = [line for line in shop("admins", "list").splitlines() if line.startswith("ada ")]
    assert ada.split()[-1] != "-", "listed as disabled"
    for command in (["rotate", "ada"], ["disable", "ada"], ["rotate", "nobody"]):
        failed = CliRunner().invoke(cli.main, ["admins", *command])
        assert failed.exit_code == 1 and "no enabled admin" in failed.output


def test_an_operator_is_the_actor_of_their_commands_and_the_bootstrap_token_still_works(
    client: FlaskClient,
    application: Application,
    confirmed: str,
    operator: Admin,
    admin_headers: dict[str, str],
) -> None:
    shipped = client.post(
        f"/admin/api/orders/{confirmed}/ship",
        json={"tracking_number": "1Z999AA10123456784"},
        headers=operator.headers,
    )
    assert shipped.status_code == 202, shipped.get_json()
    assert event_actors(application, "OrderShipped") == [operator.actor]

    restocked = client.post(
        "/admin/api/products/MUG-1/restock", json={"quantity": 3}, headers=admin_headers
    )
    assert restocked.status_code == 202
    assert event_actors(application, "StockReplenished") == ["admin:bootstrap"]

    rebuilt = client.post("/admin/api/projections/catalog/rebuild", headers=operator.headers)
    assert rebuilt.status_code == 202
    with application.engine.connect() as conn:
        requested_by = conn.execute(
            text("SELECT building_requested_by FROM projection_generations WHERE name = 'catalog'")
        ).scalar_one()
    assert requested_by == operator.actor


def test_a_customer_token_is_no_admin_token_and_an_admin_token_no_customer_token(
    client: FlaskClient, ada: Customer, operator: Admin, catalog: None
) -> None:
    assert client.get("/admin/api/orders", headers=ada.headers).status_code == 403
    assert client.get("/api/orders", headers=operator.headers).status_code == 403
    forged = _bearer("shop_admin_" + "x" * 43)
    assert client.get("/admin/api/orders", headers=forged).status_code == 401


@pytest.mark.parametrize("ending", ["rotate", "disable"])
def test_rotating_or_disabling_an_admin_ends_their_dashboard_sessions(
    app: Flask, application: Application, operator: Admin, ending: str
) -> None:
    browser, other = app.test_client(), app.test_client()
    assert sign_in(browser, operator.token).status_code == 303
    assert browser.get("/admin/orders").status_code == 200
    assert sign_in(other, application.settings.admin_token or "").status_code == 303

    if ending == "rotate":
        new_token = application.admins.rotate(operator.login)
    else:
        application.admins.disable(operator.login)

    ended = browser.get("/admin/orders")
    assert ended.status_code == 302 and ended.headers["Location"].startswith("/admin/login")
    assert browser.get("/admin/rq/").status_code == 302
    posted = browser.post("/admin/inventory/MUG-1/restock", data={"quantity": "1"})
    assert posted.status_code in (302, 400)  # no session: its CSRF token is gone too
    assert other.get("/admin/orders").status_code == 200, "the bootstrap admin's stays"
    assert sign_in(browser, operator.token).status_code == 401
    if ending == "rotate":
        assert sign_in(browser, new_token).status_code == 303
        assert browser.get("/admin/orders").status_code == 200


def test_a_named_admin_signs_in_to_the_dashboard_and_is_recorded_as_acting_there(
    client: FlaskClient, application: Application, confirmed: str, operator: Admin
) -> None:
    assert sign_in(client, operator.token).status_code == 303
    form = {"tracking_number": "1Z1", "confirmed": "yes", "csrf_token": csrf(client)}
    done = client.post(f"/admin/orders/{confirmed}/ship", data=form)
    assert done.status_code == 303
    restocked = client.post(
        "/admin/inventory/MUG-1/restock", data={"quantity": "2", "csrf_token": csrf(client)}
    )
    assert restocked.status_code == 303
    assert event_actors(application, "OrderShipped") == [operator.actor]
    assert event_actors(application, "StockReplenished") == [operator.actor]


def test_the_bootstrap_admin_signs_in_as_an_operator(
    admin: FlaskClient, settings: Settings
) -> None:
    page = admin.get("/admin/orders").get_data(as_text=True)
    assert 'data-signed-in="bootstrap"' in page and ">operator<" in page


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
