"""The dashboard's operations pages: parked orders retried or skipped, and a saga's step
retried or its order cancelled, each by a form post that goes through the same code as
the admin API."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from config.bootstrap import Application
from config.queues import EVERY_SUBSCRIPTION
from projections.projection import PostgresProjection
from tests.integration.dashboard.support import csrf
from tests.integration.sagas.support import settle
from tests.support.payments import AUTHENTICATION_REQUIRED
from tests.support.shop import Shop


def drain_everything(application: Application, times: int) -> None:
    for _ in range(times):
        for subscriber in application.subscribers(EVERY_SUBSCRIPTION):
            application.runner.run(subscriber)


def parked_rows(admin: FlaskClient) -> list[str]:
    html = admin.get("/admin/parked").get_data(as_text=True)
    return [part.split('"')[0] for part in html.split('data-parked="')[1:]]


def test_the_parked_page_lists_a_parked_order_and_retries_it_or_skips_it_with_a_reason(
    admin: FlaskClient, application: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = Shop(application.bus, application.provider_calls)
    shop.add_product("MUG-1", stock=10)
    ada = shop.customer("ada@example.com")
    first, second = shop.place(ada, {"MUG-1": 1}), shop.place(ada, {"MUG-1": 1})
    projection = application.read_side.projection("order_detail")
    assert isinstance(projection, PostgresProjection)
    real = projection.handlers.of("OrderPlaced")
    assert real is not None

    def failing(event: Any, *args: Any) -> None:
        if event.order_id in (first.order_id, second.order_id):
            raise RuntimeError("cannot place")
        real(event, *args)

    with monkeypatch.context() as patched:
        patched.setitem(projection.handlers._by_type, "OrderPlaced", failing)
        # Each failing event is tried park_after times; both orders may share a partition.
        drain_everything(application, 2 * application.runner.park_after)
    assert sorted(parked_rows(admin)) == sorted(
        f"order_detail@1/{o.order_id}" for o in (first, second)
    )
    page = admin.get("/admin/parked").get_data(as_text=True)
    assert "RuntimeError: cannot place" in page

    retried = admin.post(
        f"/admin/parked/order_detail@1/{first.order_id}/retry", data={"csrf_token": csrf(admin)}
    )
    assert retried.status_code == 303
    shown = admin.get("/admin/parked").get_data(as_text=True)
    assert f"parked event(s) of {first.order_id} to order_detail@1" in shown
    unreasoned = admin.post(
        f"/admin/parked/order_detail@1/{second.order_id}/skip",
        data={"csrf_token": csrf(admin), "reason": " "},
    )
    assert unreasoned.status_code == 303
    assert "Say why" in admin.get("/admin/parked").get_data(as_text=True)
    assert parked_rows(admin) == [f"order_detail@1/{second.order_id}"]
    skipped = admin.post(
        f"/admin/parked/order_detail@1/{second.order_id}/skip",
        data={"csrf_token": csrf(admin), "reason": "test order"},
    )
    assert skipped.status_code == 303
    assert parked_rows(admin) == []
    with application.engine.connect() as conn:
        done = conn.execute(
            text("SELECT action, actor, reason FROM parking_actions WHERE actor <> 'system'")
        ).all()
    assert sorted(tuple(row) for row in done) == [
        ("retried", "admin:bootstrap", ""),
        ("skipped", "admin:bootstrap", "test order"),
    ]
    forged = admin.post(f"/admin/parked/order_detail@1/{second.order_id}/retry", data={})
    assert forged.status_code in (400, 403)


def test_the_sagas_page_cancels_through_the_order_action_and_shows_why_it_was_compensated(
    admin: FlaskClient, application: Application
) -> None:
    shop = Shop(application.bus, application.provider_calls)
    shop.add_product("MUG-1", stock=10)
    ada = shop.customer("ada@example.com")
    waiting = shop.place(ada, {"MUG-1": 1}, AUTHENTICATION_REQUIRED)
    settle(application)
    page = admin.get("/admin/sagas").get_data(as_text=True)
    row = page.split(f'data-saga="{waiting.order_id}"')[1].split("</tr>")[0]
    assert 'data-action="retry-step"' in row and 'data-action="cancel-saga"' in row

    cancel = row.split('data-action="cancel-saga"')[0].rsplit("<form", 1)[1]
    assert f'action="/admin/orders/{waiting.order_id}/cancel"' in cancel  # the order's action
    form = {"csrf_token": csrf(admin), "reason": "fraud check failed"}
    asked = admin.post(f"/admin/orders/{waiting.order_id}/cancel", data=form)
    assert 'data-confirm-step="cancel"' in asked.get_data(as_text=True)  # confirm first
    cancelled = admin.post(
        f"/admin/orders/{waiting.order_id}/cancel", data=form | {"confirmed": "yes"}
    )
    assert cancelled.status_code == 303
    settle(application)

    page = admin.get("/admin/sagas").get_data(as_text=True)
    compensated = page.split("<h2>Compensated lately")[1]
    assert f'data-saga="{waiting.order_id}"' in compensated
    assert "cancelled by admin: fraud check failed" in compensated
    again = admin.post(f"/admin/sagas/{waiting.order_id}/retry", data={"csrf_token": csrf(admin)})
    assert again.status_code == 303
    assert "Nothing to retry" in admin.get("/admin/sagas").get_data(as_text=True)
