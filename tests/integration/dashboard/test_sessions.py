"""Dashboard sessions live in Redis, the cookie only names one: signing out, a changed
admin token or a record that expired or was removed ends a session for every copy of
its cookie, and with Redis down nobody gets in."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from config.bootstrap import Application
from config.flask_app import create_app
from config.settings import Settings
from kernel.auth import Authenticator
from tests.integration.dashboard.support import PAGES, csrf, sign_in
from tests.support.polling import eventually
from tests.support.processes import free_port

RECORDS = "shop:dashboard:session:*"


def copy_of(client: FlaskClient, app: Flask) -> FlaskClient:
    """Another browser of `app` holding a copy of `client`'s session cookie."""
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = client.get_cookie(name)
    assert cookie is not None, "not signed in"
    other = app.test_client()
    other.set_cookie(name, cookie.value)
    return other


def records(redis: Redis) -> list[bytes]:
    return list(redis.scan_iter(match=RECORDS))


def test_signing_in_keeps_a_session_record_and_the_cookie_only_names_it(
    admin: FlaskClient, application: Application, app: Flask, settings: Settings
) -> None:
    for path in PAGES:
        assert admin.get(path).status_code == 200, path
    (record,) = records(application.redis)
    held = application.redis.get(record)
    lifetime = app.permanent_session_lifetime.total_seconds()
    assert lifetime - 60 < application.redis.ttl(record) <= lifetime
    assert held is not None and str(settings.admin_token).encode() not in held
    with admin.session_transaction() as session:
        assert set(session) == {"id", "csrf"}
        assert session["id"] not in record.decode(), "the record's key is not the cookie's id"


def test_a_copied_cookie_stops_working_once_its_session_signs_out(
    admin: FlaskClient, app: Flask, application: Application
) -> None:
    thief = copy_of(admin, app)
    assert thief.get("/admin/orders").status_code == 200

    response = admin.post("/admin/logout", data={"csrf_token": csrf(admin)})

    assert response.status_code == 303
    assert records(application.redis) == []
    replayed = thief.get("/admin/orders")
    assert replayed.status_code == 302
    assert replayed.headers["Location"].startswith("/admin/login")
    assert thief.get("/admin/rq/0/data/queues.json").status_code == 302


@pytest.mark.parametrize("ended", ["expired", "removed"])
def test_a_session_whose_record_is_gone_is_refused(
    admin: FlaskClient, application: Application, ended: str
) -> None:
    (record,) = records(application.redis)
    if ended == "expired":
        application.redis.pexpire(record, 1)

        def expired() -> None:
            assert records(application.redis) == []

        eventually(expired, timeout=5, interval=0.01)
    else:
        application.redis.delete(record)

    assert admin.get("/admin/orders").status_code == 302
    assert sign_in(admin, application.settings.admin_token or "").status_code == 303
    assert admin.get("/admin/orders").status_code == 200, "signing in again works"


def test_a_session_from_before_the_admin_token_changed_is_refused(
    admin: FlaskClient, app: Flask, application: Application, settings: Settings
) -> None:
    # The same shop restarted with a new ADMIN_TOKEN: same SECRET_KEY, same Redis.
    restarted = replace(settings, admin_token="rotated")
    authenticator = Authenticator(
        "rotated", customer_tokens=application.accounts, admins=application.admins
    )
    rotated = create_app(replace(application, settings=restarted, authenticator=authenticator))
    old = copy_of(admin, rotated)

    assert records(application.redis), "its record is still there: the token decides"
    assert old.get("/admin/orders").status_code == 302
    assert old.get("/admin/rq/").status_code == 302
    assert sign_in(old, "rotated").status_code == 303
    assert old.get("/admin/orders").status_code == 200


def test_with_redis_down_nobody_gets_in_and_the_answer_says_why(
    admin: FlaskClient, application: Application
) -> None:
    dead = Redis(port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    down = create_app(replace(application, redis=dead))
    browser = copy_of(admin, down)

    page = browser.get("/admin/orders")
    signing_in = sign_in(down.test_client(), application.settings.admin_token or "")

    for response in (page, signing_in):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        html = response.get_data(as_text=True)
        assert "Redis is unavailable" in html
        assert "Sign out" not in html, "no menu for someone who is not known to be signed in"
