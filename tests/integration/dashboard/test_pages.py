"""Each dashboard page shows what the read models (and the log, for an order's
history) hold, once the saga and the read models have caught up."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

import dashboard.orders
from config import jobs
from config.bootstrap import Application
from orders.commands import CancelOrder
from orders.events import CancelledBy
from tests.integration.dashboard.support import place, settle, text_of
from tests.support.api_client import Customer
from tests.support.payments import AUTHENTICATION_REQUIRED, DECLINED


def _order_ids(html: str) -> list[str]:
    return re.findall(r'data-order-id="([0-9a-f-]{36})"', html)


def test_the_orders_page_lists_placed_orders_newest_first_with_filters(
    admin: FlaskClient, application: Application, catalog: None, ada: Customer, grace: Customer
) -> None:
    first = place(admin, ada, {"MUG-1": 2})
    second = place(admin, grace, {"TEE-1": 1})
    declined = place(admin, ada, {"MUG-1": 1}, token=DECLINED)
    settle(application)

    html = admin.get("/admin/orders").get_data(as_text=True)
    assert _order_ids(html) == [declined.order_id, second.order_id, first.order_id]
    assert "29.99 EUR" in html  # 2 x 12.50 + 4.99 shipping (free from 50.00)
    assert "up to date with the event log" in html

    cancelled = admin.get("/admin/orders?status=cancelled").get_data(as_text=True)
    assert _order_ids(cancelled) == [declined.order_id]
    of_ada = admin.get(f"/admin/orders?customer={ada.customer_id}").get_data(as_text=True)
    assert _order_ids(of_ada) == [declined.order_id, first.order_id]
    today = datetime.now(UTC).date()
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert _order_ids(admin.get(f"/admin/orders?from={tomorrow}").get_data(as_text=True)) == []
    in_range = admin.get(f"/admin/orders?from={today}&to={today}").get_data(as_text=True)
    assert len(_order_ids(in_range)) == 3


def test_the_orders_page_pages_with_a_cursor_keeping_the_filters(
    admin: FlaskClient,
    application: Application,
    catalog: None,
    ada: Customer,
    grace: Customer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dashboard.orders, "PAGE_SIZE", 3)
    placed = [place(admin, ada, {"MUG-1": 1}).order_id for _ in range(5)]
    place(admin, grace, {"MUG-1": 1})
    settle(application)

    first = admin.get(f"/admin/orders?customer={ada.customer_id}").get_data(as_text=True)
    older = re.search(r'rel="next" href="([^"]+)"', first)
    assert older is not None
    second = admin.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)

    assert _order_ids(first) + _order_ids(second) == placed[::-1]
    assert 'rel="next"' not in second
    assert "« Newest" in second


def test_bad_filters_are_named_on_the_page(admin: FlaskClient) -> None:
    response = admin.get("/admin/orders?status=lost&from=2025-02-30")

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'data-field="status"' in html
    assert 'data-field="from"' in html


def test_an_order_shows_its_timeline_and_each_event_with_what_it_caused(
    admin: FlaskClient, application: Application, catalog: None, ada: Customer
) -> None:
    order = place(admin, ada, {"MUG-1": 2, "TEE-1": 1})
    settle(application)

    response = admin.get(f"/admin/orders/{order.order_id}")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "data-status>confirmed<" in html
    assert "49.98 EUR" in html
    types = re.findall(r'data-event-type="(\w+)"', html)
    assert types[0] == "OrderPlaced"
    assert {"InventoryReserved", "PaymentSucceeded", "OrderConfirmed"} <= set(types)
    history = _history(application, order.order_id)
    placed = history["OrderPlaced"]
    reserved = history["InventoryReserved"]
    # OrderPlaced led the saga to ReserveInventory, which recorded InventoryReserved:
    row = _row(html, placed["position"])
    assert f'data-command="{reserved["causation_id"]}"' in row
    assert f'href="#event-{reserved["position"]}"' in row
    assert f'reacting to <a href="#event-{placed["position"]}">' in _row(html, reserved["position"])
    assert "requested by the customer " in text_of(row)
    assert str(placed["correlation_id"])[:8] in row


def test_an_unknown_order_is_a_404_page(admin: FlaskClient) -> None:
    response = admin.get("/admin/orders/6f1d2f4e-7c1a-4b5e-9a57-2f0d8c1e9b31")

    assert response.status_code == 404
    assert "There is no such order." in response.get_data(as_text=True)


def test_the_sales_page_charts_revenue_per_day_with_totals_and_rates(
    admin: FlaskClient, application: Application, catalog: None, ada: Customer
) -> None:
    kept = place(admin, ada, {"MUG-1": 4})  # 50.00 EUR, free shipping
    regretted = place(admin, ada, {"TEE-1": 1})  # 19.99 + 4.99 shipping
    place(admin, ada, {"MUG-1": 1}, token=DECLINED)
    settle(application)
    assert application.bus.dispatch(
        CancelOrder(regretted.order_id, "changed my mind", CancelledBy.SYSTEM)
    ).ok
    settle(application)

    response = admin.get("/admin/sales")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-total="revenue">74.98 EUR<' in html
    assert 'data-total="orders">2<' in html
    assert 'data-total="cancellations">2<' in html
    assert 'data-total="refunds">1<' in html
    assert "rate 50.0 %" in html  # cancellations / (confirmations + cancellations)
    today = datetime.now(UTC).date().strftime("%b %d")
    bars = re.findall(r'data-day="([^"]+)" data-revenue="(\d+)"', html)
    assert len(bars) == 14
    assert bars[-1] == (today, "7498")
    assert sum(int(revenue) for _, revenue in bars) == 7498
    top = text_of(html.split("Top products")[1])
    assert "MUG-1 Enamel mug 4 50.00 EUR" in top
    assert kept.order_id  # confirmed and kept


def test_the_sales_page_refuses_a_backwards_range(admin: FlaskClient) -> None:
    response = admin.get("/admin/sales?from=2026-03-10&to=2026-03-01")

    assert response.status_code == 422
    assert 'data-field="to"' in response.get_data(as_text=True)


def test_the_projections_page_shows_every_subscription_and_rebuilds_one(
    admin: FlaskClient, application: Application, catalog: None, ada: Customer
) -> None:
    place(admin, ada, {"MUG-1": 1})
    settle(application)
    place(admin, ada, {"MUG-1": 1})  # not caught up: the order list is behind

    html = admin.get("/admin/projections").get_data(as_text=True)
    for name in ("catalog", "order_detail", "sales_analytics", "order_list", "order_fulfillment"):
        assert f'data-subscription="{name}"' in html
    assert 'data-subscription="order_list" data-state="running"' in html
    assert 'data-subscription="order_fulfillment" data-state="running"' in html
    assert "collecting" in html  # one reading so far: no line yet

    asked = admin.post("/admin/projections/order_detail/rebuild", data={"csrf_token": _csrf(admin)})
    assert asked.status_code == 200
    assert 'data-confirm-step="rebuild"' in asked.get_data(as_text=True)
    assert "into generation 2" in asked.get_data(as_text=True)
    assert application.read_side.generations("order_detail").building is None, "not yet"
    response = admin.post(
        "/admin/projections/order_detail/rebuild",
        data={"csrf_token": _csrf(admin), "confirmed": "yes"},
    )
    assert response.status_code == 303
    progress = admin.get("/admin/projections/order_detail/rebuild.json").get_json()
    assert progress["building"] == 2 and progress["done"] is False
    assert progress["head"] > progress["checkpoint"] == 0
    page = admin.get("/admin/projections").get_data(as_text=True)
    assert "Rebuilding order_detail into generation 2." in page
    assert "data-progress-url" in page

    assert jobs.rebuild("order_detail") == "switched to generation 2"

    progress = admin.get("/admin/projections/order_detail/rebuild.json").get_json()
    assert progress == {
        "name": "order_detail",
        "subscription": "order_detail@2",
        "active": 2,
        "building": None,
        "done": True,
    }
    row = (
        admin.get("/admin/projections")
        .get_data(as_text=True)
        .split('data-subscription="order_detail"')[1]
    )
    assert "<code data-subscription-name>order_detail@2</code>" in row.split("</tr>")[0]
    assert admin.get("/admin/projections/nothing/rebuild.json").status_code == 404


def test_the_sagas_page_counts_sagas_and_lists_the_stuck_ones(
    admin: FlaskClient, application: Application, catalog: None, ada: Customer
) -> None:
    place(admin, ada, {"MUG-1": 1})
    waiting = place(admin, ada, {"MUG-1": 1}, token=AUTHENTICATION_REQUIRED)
    settle(application)
    with application.engine.begin() as conn:
        conn.execute(
            text("UPDATE order_fulfillment_sagas SET deadline = now() - interval '1 minute',"
                 " step_entered_at = now() - interval '1 hour' WHERE order_id = :id"),
            {"id": waiting.order_id},
        )  # fmt: skip

    html = admin.get("/admin/sagas").get_data(as_text=True)

    assert 'data-count="completed">1<' in html
    assert 'data-count="in_progress">1<' in html
    assert 'data-count="stuck">1<' in html
    stuck = html.split("<h2>Stuck")[1].split("<h2>In progress")[0]
    assert f'data-saga="{waiting.order_id}"' in stuck
    assert "the payment result" in stuck


def test_the_inventory_page_shows_stock_on_hand_reserved_and_available(
    admin: FlaskClient, application: Application, catalog: None, ada: Customer
) -> None:
    place(admin, ada, {"MUG-1": 3}, token=AUTHENTICATION_REQUIRED)  # reserved, not paid yet
    settle(application)

    html = admin.get("/admin/inventory").get_data(as_text=True)

    row = html.split('data-sku="MUG-1"')[1].split("</tr>")[0]
    assert "data-on-hand>100<" in row
    assert "data-reserved>3<" in row
    assert "data-available>97<" in row
    assert "data-price>12.50 EUR<" in row
    assert 'data-freshness="catalog"' in html


def _csrf(client: FlaskClient) -> str:
    with client.session_transaction() as session:
        token: str = session["csrf"]
    return token


def _history(application: Application, order_id: str) -> dict[str, dict[str, object]]:
    with application.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT type, position, metadata FROM events WHERE data ->> 'order_id' = :id"
                " ORDER BY position"
            ),
            {"id": order_id},
        ).all()
    return {row[0]: {"position": row[1], **row[2]} for row in rows}


def _row(html: str, position: object) -> str:
    return html.split(f'id="event-{position}"')[1].split("</tr>")[0]
