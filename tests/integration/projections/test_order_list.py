from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from config.bootstrap import Application
from orders.events import CancelledBy
from tests.integration.projections.support import order_events
from tests.support.api_client import Customer
from tests.support.read_models import contents, drain
from tests.support.shop import CATALOG, PlacedOrder, Shop


def _placed(application: Application, order: PlacedOrder) -> tuple[str, int]:
    """(occurred_at, position) of the order's OrderPlaced."""
    ((_, occurred_at, position),) = [
        event for event in order_events(application, order.order_id) if event[0] == "OrderPlaced"
    ]
    return occurred_at, position


def _summary(application: Application, order: PlacedOrder, status: str) -> dict[str, Any]:
    placed_at, _ = _placed(application, order)
    return {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "status": status,
        "total": {"amount": order.total.amount, "currency": order.total.currency},
        "item_count": order.item_count,
        "placed_at": placed_at,
    }


def test_the_order_list_keeps_each_order_once_per_list_newest_first(
    application: Application,
    shop: Shop,
    client: FlaskClient,
    admin_headers: dict[str, str],
    register_customer: Callable[..., Customer],
) -> None:
    ada = register_customer("ada@example.com", "Ada Lovelace")
    bob = register_customer("bob@example.com", "Bob Babbage")
    shop.add_products(CATALOG)
    shipped = shop.place(ada.customer_id, {"MUG-1": 2, "TEE-1": 1})
    cancelled = shop.place(ada.customer_id, {"BOOK-1": 1})
    confirmed = shop.place(bob.customer_id, {"TEE-1": 4})
    for step in (shop.reserve, shop.pay, shop.confirm, shop.ship, shop.commit):
        step(shipped)
    shop.cancel(cancelled, by=CancelledBy.CUSTOMER)
    for step in (shop.reserve, shop.pay, shop.confirm):
        step(confirmed)
    pending = shop.place(ada.customer_id, {"MUG-1": 1})

    drain(application, ["order_list"])

    status = {
        shipped: "shipped",
        cancelled: "cancelled",
        confirmed: "confirmed",
        pending: "pending",
    }
    seq = {order: _placed(application, order)[1] for order in status}
    placed_at = {order: _placed(application, order)[0] for order in status}

    def ranked(*orders: PlacedOrder) -> list[tuple[str, float]]:
        return [(order.order_id, float(seq[order])) for order in orders]

    expected: dict[str, Any] = {
        f"order:{order.order_id}": {
            "order_id": order.order_id,
            "customer_id": order.customer_id,
            "status": status[order],
            "total": str(order.total.amount),
            "currency": order.total.currency,
            "item_count": str(order.item_count),
            "placed_at": placed_at[order],
            "seq": str(seq[order]),
        }
        for order in status
    }
    expected |= {
        "all": ranked(shipped, cancelled, confirmed, pending),
        f"customer:{ada.customer_id}": ranked(shipped, cancelled, pending),
        f"customer:{bob.customer_id}": ranked(confirmed),
        "status:pending": ranked(pending),
        "status:confirmed": ranked(confirmed),
        "status:shipped": ranked(shipped),
        "status:cancelled": ranked(cancelled),
    }
    assert contents(application, "order_list", 1) == expected

    response = client.get("/api/orders?limit=2", headers=ada.headers)
    assert response.status_code == 200
    first = response.get_json()
    assert first["items"] == [
        _summary(application, pending, "pending"),
        _summary(application, cancelled, "cancelled"),
    ]
    assert first["next_cursor"] == str(seq[cancelled])
    assert first["read_model"] == {
        "name": "order_list",
        "lag_events": 0,
        "lag_seconds": 0.0,
        "stale": False,
    }
    assert response.headers["X-Read-Model-Lag"] == "0"
    response = client.get(f"/api/orders?limit=2&cursor={first['next_cursor']}", headers=ada.headers)
    second = response.get_json()
    assert second["items"] == [_summary(application, shipped, "shipped")]
    assert second["next_cursor"] is None

    response = client.get("/api/orders", headers=bob.headers)
    assert response.get_json()["items"] == [_summary(application, confirmed, "confirmed")]

    response = client.get("/admin/api/orders", headers=admin_headers)
    assert [item["order_id"] for item in response.get_json()["items"]] == [
        order.order_id for order in (pending, confirmed, cancelled, shipped)
    ]
    response = client.get("/admin/api/orders?status=cancelled", headers=admin_headers)
    assert response.get_json()["items"] == [_summary(application, cancelled, "cancelled")]
    response = client.get(
        f"/admin/api/orders?status=pending&customer_id={ada.customer_id}", headers=admin_headers
    )
    assert response.get_json()["items"] == [_summary(application, pending, "pending")]
