"""Signing in to the dashboard: every page needs it, only the admin token gives it,
and every form post carries the session's CSRF token."""

from __future__ import annotations

import uuid
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from config.bootstrap import Application
from config.flask_app import create_app
from config.settings import Settings
from kernel.auth import Authenticator
from tests.integration.dashboard.support import PAGES, csrf, sign_in
from tests.support.api_client import Customer

PROTECTED = (
    *PAGES,
    f"/admin/orders/{uuid.uuid4()}",
    "/admin/projections/catalog/rebuild.json",
    "/admin/rq/",
    "/admin/rq/0/data/queues.json",
)


@pytest.mark.parametrize("path", PROTECTED)
def test_every_page_sends_a_stranger_to_the_login_form(client: FlaskClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert target.path == "/admin/login"
    if not path.startswith("/admin/rq"):
        assert parse_qs(target.query)["next"] == [path]


def test_the_login_form_renders_with_a_csrf_token(client: FlaskClient) -> None:
    response = client.get("/admin/login?next=/admin/sales")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'name="csrf_token" value="{csrf(client)}"' in html
    assert 'value="/admin/sales"' in html
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_a_wrong_token_is_refused_and_signs_nobody_in(client: FlaskClient) -> None:
    response = sign_in(client, "not-the-admin-token")

    assert response.status_code == 401
    assert "That is not an admin token." in response.get_data(as_text=True)
    assert client.get("/admin/orders").status_code == 302


def test_a_customer_token_is_not_the_admin_token(client: FlaskClient, ada: Customer) -> None:
    token = ada.headers["Authorization"].split()[1]

    assert sign_in(client, token).status_code == 401


def test_the_admin_token_signs_in_and_goes_back_where_it_was_asked(
    client: FlaskClient, settings: Settings
) -> None:
    token = csrf(client)
    response = client.post(
        "/admin/login",
        data={"token": settings.admin_token, "csrf_token": token, "next": "/admin/sales?to=x"},
    )

    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/sales?to=x"
    for path in PAGES:
        assert client.get(path).status_code == 200, path
    with client.session_transaction() as session:
        assert session["csrf"] != token, "signing in starts a new CSRF token"
        assert str(settings.admin_token) not in str(dict(session)), "the cookie holds no token"


def test_the_session_cookie_is_http_only_and_same_site(
    client: FlaskClient, settings: Settings
) -> None:
    response = sign_in(client, settings.admin_token or "")

    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


@pytest.mark.parametrize("elsewhere", ["https://evil.example/", "//evil.example/admin/", "/docs"])
def test_after_signing_in_it_never_leaves_the_dashboard(
    client: FlaskClient, settings: Settings, elsewhere: str
) -> None:
    response = client.post(
        "/admin/login",
        data={"token": settings.admin_token, "csrf_token": csrf(client), "next": elsewhere},
    )

    assert response.headers["Location"] == "/admin/orders"


def test_signing_in_needs_the_forms_csrf_token(client: FlaskClient, settings: Settings) -> None:
    csrf(client)
    response = client.post("/admin/login", data={"token": settings.admin_token})

    assert response.status_code == 400
    assert client.get("/admin/orders").status_code == 302


@pytest.mark.parametrize("sent", [None, "forged"])
def test_a_post_without_the_sessions_csrf_token_changes_nothing(
    admin: FlaskClient, application: Application, catalog: None, sent: str | None
) -> None:
    form = {"quantity": "5"} | ({"csrf_token": sent} if sent else {})

    response = admin.post("/admin/inventory/MUG-1/restock", data=form)

    assert response.status_code == 400
    assert "expired or came from another site" in response.get_data(as_text=True)
    with application.engine.connect() as conn:
        replenished = conn.execute(
            text("SELECT count(*) FROM events WHERE type = 'StockReplenished'")
        ).scalar_one()
    assert replenished == 0


def test_signing_out_ends_the_session(admin: FlaskClient) -> None:
    response = admin.post("/admin/logout", data={"csrf_token": csrf(admin)})

    assert response.status_code == 303
    assert admin.get("/admin/orders").status_code == 302


def test_queue_actions_must_come_from_the_dashboard_itself(admin: FlaskClient) -> None:
    assert admin.get("/admin/rq/0/data/queues.json").status_code == 200

    forged = admin.post("/admin/rq/requeue/shop-sagas", headers={"Origin": "https://evil.example"})
    by_link = admin.get("/admin/rq/requeue/shop-sagas")
    own = admin.post("/admin/rq/requeue/shop-sagas", headers={"Origin": "http://localhost"})

    assert forged.status_code == 403
    assert by_link.status_code == 405
    assert own.status_code == 200
    assert own.get_json() == {"status": "OK", "count": 0}


def test_two_apps_in_one_process_each_sign_in_with_their_own_admin_token(
    client: FlaskClient, application: Application, settings: Settings
) -> None:
    authenticator = Authenticator(
        "another-admin-token", customer_tokens=application.accounts, admins=application.admins
    )
    other = replace(
        application,
        settings=replace(settings, admin_token="another-admin-token"),
        authenticator=authenticator,
    )
    other_client = create_app(other).test_client()

    assert sign_in(other_client, settings.admin_token or "").status_code == 401
    assert sign_in(client, "another-admin-token").status_code == 401
    assert sign_in(other_client, "another-admin-token").status_code == 303
    assert other_client.get("/admin/rq/").status_code == 200
    assert sign_in(client, settings.admin_token or "").status_code == 303
