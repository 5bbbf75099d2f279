"""The orders list names each order's customer (from the customer directory), finds orders
by order id or by a customer's email, and pages both ways with its cursors."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

import dashboard.orders
from config.bootstrap import Application
from tests.integration.dashboard.support import place, settle, text_of
from tests.support.api_client import Customer


def _order_ids(html: str) -> list[str]:
    return re.findall(r'data-order-id="([0-9a-f-]{36})"', html)


def _link(html: str, page: str) -> str | None:
    found = re.search(rf'<a [^>]*href="([^"]+)" data-page="{page}"', html)
    return None if found is None else found.group(1).replace("&amp;", "&")


def test_each_order_shows_its_customers_name_and_email(
    admin: FlaskClient, application: Application, catalog: None, ada: Customer, grace: Customer
) -> None:
    mine, hers = place(admin, ada, {"MUG-1": 1}), place(admin, grace, {"TEE-1": 1})
    settle(application)

    html = admin.get("/admin/orders").get_data(as_text=True)

    rows = {
        order_id: html.split(f'data-order-id="{order_id}"')[1].split("</tr>")[0]
        for order_id in _order_ids(html)
    }
    assert "Ada Lovelace" in rows[mine.order_id] and "ada@example.com" in rows[mine.order_id]
    assert "Grace Hopper" in text_of(rows[hers.order_id])
    assert "grace@example.com" in rows[hers.order_id]
    assert f'href="/admin/orders?customer={ada.customer_id}"' in rows[mine.order_id]


def test_an_order_whose_customer_the_directory_lacks_shows_the_customer_id(
    admin: FlaskClient, application: Application, catalog: None, ada: Customer
) -> None:
    order = place(admin, ada, {"MUG-1": 1})
    settle(application)
    with application.engine.begin() as conn:  # as if the directory were behind
        conn.execute(text("DELETE FROM customer_directory"))

    html = admin.get("/admin/orders").get_data(as_text=True)

    row = html.split(f'data-order-id="{order.order_id}"')[1].split("</tr>")[0]
    assert f"<code>{ada.customer_id[:8]}</code>" in row
    assert "Ada Lovelace" not in row


def test_searching_by_order_id_finds_that_order(
    admin: FlaskClient, application: Application, catalog: None, ada: Customer, grace: Customer
) -> None:
    wanted = place(admin, ada, {"MUG-1": 1})
    place(admin, grace, {"MUG-1": 1})
    settle(application)

    found = admin.get(f"/admin/orders?q={wanted.order_id.upper()}").get_data(as_text=True)
    by_status = admin.get(f"/admin/orders?q={wanted.order_id}&status=pending")
    unknown = admin.get("/admin/orders?q=6f1d2f4e-7c1a-4b5e-9a57-2f0d8c1e9b31")

    assert _order_ids(found) == [wanted.order_id]
    assert "data-searched" in found
    assert _order_ids(by_status.get_data(as_text=True)) == []  # it is confirmed
    assert unknown.status_code == 200
    assert "No orders match." in unknown.get_data(as_text=True)


def test_searching_by_email_lists_that_customers_orders(
    admin: FlaskClient, application: Application, catalog: None, ada: Customer, grace: Customer
) -> None:
    first, second = place(admin, ada, {"MUG-1": 1}), place(admin, ada, {"TEE-1": 1})
    place(admin, grace, {"MUG-1": 1})
    settle(application)

    found = admin.get("/admin/orders?q=+Ada@Example.COM+").get_data(as_text=True)
    nobody = admin.get("/admin/orders?q=ada@example.org").get_data(as_text=True)
    other = admin.get(f"/admin/orders?q=ada@example.com&customer={grace.customer_id}")

    assert _order_ids(found) == [second.order_id, first.order_id]
    assert 'value="Ada@Example.COM"' in found, "the search is kept in its box"
    assert _order_ids(nobody) == []
    assert _order_ids(other.get_data(as_text=True)) == []


def test_a_search_that_is_neither_an_order_id_nor_an_email_is_named(admin: FlaskClient) -> None:
    response = admin.get("/admin/orders?q=6f1d2f4e")

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'data-field="q"' in html
    assert "Enter a whole order id or a customer&#39;s email address." in html


def test_pages_go_older_and_back_newer_keeping_the_filters(
    admin: FlaskClient,
    application: Application,
    catalog: None,
    ada: Customer,
    grace: Customer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dashboard.orders, "PAGE_SIZE", 2)
    placed = [place(admin, ada, {"MUG-1": 1}).order_id for _ in range(5)]
    place(admin, grace, {"MUG-1": 1})
    settle(application)
    newest_first = placed[::-1]

    first = admin.get("/admin/orders?q=ada@example.com").get_data(as_text=True)
    assert _link(first, "newer") is None and _link(first, "newest") is None
    second = admin.get(_link(first, "older") or "").get_data(as_text=True)
    third = admin.get(_link(second, "older") or "").get_data(as_text=True)
    assert [_order_ids(first), _order_ids(second), _order_ids(third)] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:],
    ]
    assert _link(third, "older") is None
    assert "q=ada@example.com" in (_link(third, "newer") or "")

    back = admin.get(_link(third, "newer") or "").get_data(as_text=True)
    assert _order_ids(back) == newest_first[2:4]
    assert _link(back, "older") is not None and _link(back, "newest") is not None
    top = admin.get(_link(back, "newer") or "").get_data(as_text=True)
    assert _order_ids(top) == newest_first[0:2]
    assert _link(top, "newer") is None, "nothing is newer than the newest orders"


def test_paging_back_within_a_date_range(
    admin: FlaskClient,
    application: Application,
    catalog: None,
    ada: Customer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dashboard.orders, "PAGE_SIZE", 2)
    placed = [place(admin, ada, {"MUG-1": 1}).order_id for _ in range(3)]
    settle(application)
    today = datetime.now(UTC).date().isoformat()

    first = admin.get(f"/admin/orders?from={today}&to={today}").get_data(as_text=True)
    second = admin.get(_link(first, "older") or "").get_data(as_text=True)
    back = admin.get(_link(second, "newer") or "").get_data(as_text=True)

    assert _order_ids(first) == placed[:0:-1]
    assert _order_ids(second) == placed[:1]
    assert _order_ids(back) == _order_ids(first)
    assert _link(back, "newer") is None


def test_paging_one_way_at_a_time(admin: FlaskClient) -> None:
    response = admin.get("/admin/orders?cursor=5&after=3")

    assert response.status_code == 422
    assert 'data-field="after"' in response.get_data(as_text=True)
