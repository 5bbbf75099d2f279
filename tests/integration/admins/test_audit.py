"""Who did what: the order page names each command's admin by login (customers and the
system as such), and the Audit page lists the admins' actions newest first, a page at a
time, from the events' actors and the parking log, through partial indexes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Connection, event, text

from config.bootstrap import Application
from kernel import audit
from tests.integration.admins.support import Admin
from tests.integration.dashboard.support import place, settle, sign_in, text_of
from tests.support.api_client import Customer


@pytest.fixture
def confirmed(client: FlaskClient, application: Application, catalog: None, ada: Customer) -> str:
    order = place(client, ada, {"MUG-1": 2})
    settle(application)
    return order.order_id


def test_the_order_page_names_who_did_what(
    client: FlaskClient, application: Application, confirmed: str, operator: Admin
) -> None:
    shipped = client.post(
        f"/admin/api/orders/{confirmed}/ship",
        json={"tracking_number": "1Z1"},
        headers=operator.headers,
    )
    assert shipped.status_code == 202
    application.admins.disable(operator.login)  # their actions stay theirs
    assert sign_in(client, application.settings.admin_token or "").status_code == 303

    html = client.get(f"/admin/orders/{confirmed}").get_data(as_text=True)

    shown = re.findall(r'data-actor="([^"]+)">([^<]+)<', html)
    assert (operator.actor, "olga") in shown
    assert any(
        actor.startswith("customer:") and name.startswith("the customer ") for actor, name in shown
    )
    assert "requested by olga" in text_of(html)


def test_the_audit_page_lists_admin_actions_newest_first_with_who_and_which_order(
    client: FlaskClient,
    application: Application,
    confirmed: str,
    operator: Admin,
    viewer: Admin,
    admin_headers: dict[str, str],
) -> None:
    client.post(
        f"/admin/api/orders/{confirmed}/ship",
        json={"tracking_number": "1Z1"},
        headers=operator.headers,
    )
    client.post("/admin/api/products/TEE-1/restock", json={"quantity": 4}, headers=admin_headers)
    with application.engine.begin() as conn:  # a retry of a parked key, from the dashboard
        conn.execute(
            text(
                "INSERT INTO parking_actions (subscription, key, action, actor, reason, events)"
                " VALUES ('order_detail@1', :key, 'retried', :actor, 'fix deployed', 1)"
            ),
            {"key": confirmed, "actor": operator.actor},
        )
    assert sign_in(client, viewer.token).status_code == 303  # a viewer reads the audit too

    html = client.get("/admin/audit").get_data(as_text=True)

    rows = re.findall(r'<tr data-audit="([^"]+)">(.*?)</tr>', html, re.S)
    # Shipping the order is one shipment of all of it, then the order shipped: two events.
    assert [what for what, _ in rows] == [
        "parked key retried", "StockReplenished", "OrderShipped", "ShipmentDispatched",
    ]  # fmt: skip
    retried, restocked, shipped, dispatched = (text_of(row) for _, row in rows)
    assert "olga" in dispatched and "1Z1" in dispatched
    assert "olga" in retried and "fix deployed" in retried
    assert "the bootstrap admin" in restocked and "TEE-1 +4 units" in restocked
    assert "olga" in shipped and "1Z1" in shipped
    assert f'href="/admin/orders/{confirmed}"' in rows[2][1]
    assert "ada@example.com" not in html, "no customer's personal data on the audit page"

    only = client.get("/admin/audit?admin=bootstrap").get_data(as_text=True)
    assert re.findall(r'<tr data-audit="([^"]+)">', only) == ["StockReplenished"]
    nobody = client.get("/admin/audit?admin=nobody").get_data(as_text=True)
    assert "No admin actions by nobody." in nobody


def test_the_audit_pages_go_back_in_time_without_gaps_or_repeats(
    client: FlaskClient, application: Application, catalog: None, operator: Admin
) -> None:
    for quantity in range(1, 71):
        restocked = client.post(
            "/admin/api/products/MUG-1/restock",
            json={"quantity": quantity},
            headers=operator.headers,
        )
        assert restocked.status_code == 202
    assert sign_in(client, operator.token).status_code == 303

    seen: list[str] = []
    path: str | None = "/admin/audit"
    pages = 0
    while path is not None:
        html = client.get(path).get_data(as_text=True)
        seen += [
            text_of(row).split("MUG-1")[1].strip()
            for row in re.findall(r"<tr data-audit=.*?</tr>", html, re.S)
        ]
        older = re.search(r'rel="next" href="([^"]+)"', html)
        path = older.group(1).replace("&amp;", "&") if older else None
        pages += 1
    assert pages == 2
    assert seen == [f"+{quantity} units" for quantity in range(70, 0, -1)]


def test_a_cursor_no_page_gave_is_refused(client: FlaskClient, operator: Admin) -> None:
    assert sign_in(client, operator.token).status_code == 303
    assert client.get("/admin/audit?before=yesterday").status_code == 422
    assert client.get("/admin/audit?before=1.7.1").status_code == 422
    too_far = client.get("/admin/audit?before=99999999999999999999.0.1")  # past datetime
    assert too_far.status_code == 422
    assert client.get(f"/admin/audit?before=1.0.{2**63}").status_code == 422  # past bigint


def test_pages_of_the_audit_trail_read_the_partial_indexes(application: Application) -> None:
    plans: list[str] = []

    def explained(conn: Connection, clause: Any, multiparams: Any, params: Any, *_: Any) -> None:
        if "FROM events" in str(clause) or "FROM parking_actions" in str(clause):
            compiled = clause.compile(dialect=conn.dialect)
            values = multiparams[0] if multiparams else params
            plan = conn.exec_driver_sql("EXPLAIN " + compiled.string, values)
            plans.append("\n".join(row[0] for row in plan))

    with application.engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))  # a tiny table would be scanned
        event.listen(conn, "before_execute", explained)
        try:
            audit.page(conn, limit=10)
            audit.page(conn, limit=10, before=audit.Cursor.parse("1800000000000000.1.5"))
            audit.page(conn, limit=10, actor="admin:bootstrap")
        finally:
            event.remove(conn, "before_execute", explained)
            conn.execute(text("RESET enable_seqscan"))

    assert len(plans) == 6
    assert all("Index" in plan for plan in plans), plans
    assert sum("events_admin_actions" in plan for plan in plans) == 3, plans
    assert "events_admin_actions_by_actor" in plans[4], plans[4]  # one admin's actions
    assert sum("parking_actions_by_people" in plan for plan in plans) == 3, plans
