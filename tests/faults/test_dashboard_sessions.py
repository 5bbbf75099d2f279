"""Scenario: a stolen dashboard cookie. An operator signs in to the dashboard over HTTP
and someone copies the session cookie; once the operator signs out, replaying the copy
(on either gunicorn worker) gets the sign-in form, never a page, a queue or an action."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text

from config.bootstrap import Application
from config.settings import Settings
from tests.faults.support import CSRF, Browser, start_api
from tests.support.processes import Processes

REPLAYS = 20  # spread over the API's two workers


def test_a_cookie_copied_before_sign_out_is_refused_after_it(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    api, _, _ = start_api(processes, settings)
    api.add_product("MUG-1", amount=1250, stock=10)
    operator = Browser(api.base_url)
    status, _, form = operator("GET", "/admin/login")
    assert status == 200
    (token,) = CSRF.findall(form)
    status, location, _ = operator(
        "POST", "/admin/login", {"token": settings.admin_token or "", "csrf_token": token}
    )
    assert (status, location) == (303, "/admin/orders"), "signed in"
    status, _, orders = operator("GET", "/admin/orders")
    assert status == 200 and "<h1>Orders</h1>" in orders
    (csrf,) = set(CSRF.findall(orders))  # the sign-out form's
    thief = Browser(api.base_url, operator.cookie)
    assert thief("GET", "/admin/inventory")[0] == 200, "the copy works while signed in"

    signed_out_at = time.monotonic()
    status, location, _ = operator("POST", "/admin/logout", {"csrf_token": csrf})
    assert (status, location) == (303, "/admin/login")

    answers: Counter[str] = Counter()
    for n in range(REPLAYS):
        path = ("/admin/orders", "/admin/inventory", "/admin/rq/0/data/queues.json")[n % 3]
        status, location, body = thief("GET", path)
        answers[f"GET {status}"] += 1
        assert status == 302 and urlsplit(location).path == "/admin/login", (path, status)
        assert "MUG-1" not in body and "shop-sagas" not in body, "no dashboard data"
    status, location, _ = thief(
        "POST", "/admin/inventory/MUG-1/restock", {"quantity": "5", "csrf_token": csrf}
    )
    answers[f"POST {status}"] += 1
    assert status == 302 and urlsplit(location).path == "/admin/login"
    with application.engine.connect() as conn:
        restocks = conn.execute(
            text("SELECT count(*) FROM events WHERE type = 'StockReplenished'")
        ).scalar_one()
    assert restocks == 0, "the replayed form changed nothing"
    figures.update(
        replays=REPLAYS + 1,
        answers=dict(answers),
        refused_within_seconds=round(time.monotonic() - signed_out_at, 3),
    )
