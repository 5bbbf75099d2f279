"""A refunded payment shows in the order's status: a shipped order sent back, or a
confirmed one refunded before it shipped (which the saga then cancels), reads
`refunded`; a cancelled order whose payment goes back stays `cancelled`. The same
whether the events arrive in one batch or one by one."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from config.bootstrap import Application
from orders.events import CancelledBy
from tests.support.event_log import whole_log
from tests.support.leases import let_go, sole_lease
from tests.support.read_models import contents, drain, rebuilt_from_zero
from tests.support.shop import CATALOG, PlacedOrder, Shop

MODELS = ("order_detail", "order_list")
# Read models that decide refunds and cancellations both in memory (an order placed in
# the batch) and in SQL (one placed in an earlier batch).
BATCHED = (*MODELS, "sales_analytics")


def _paid(shop: Shop) -> PlacedOrder:
    order = shop.place(shop.customer(f"{uuid.uuid4().hex[:12]}@example.com"), {"MUG-1": 1})
    for step in (shop.reserve, shop.pay, shop.confirm):
        step(order)
    return order


def _returned(shop: Shop) -> PlacedOrder:
    """Shipped, then sent back and refunded by the admin."""
    order = _paid(shop)
    shop.ship(order)
    shop.commit(order)
    shop.refund(order, "sent back")
    return order


def _refunded_first(shop: Shop) -> PlacedOrder:
    """Refunded before it shipped: the saga then cancels it."""
    order = _paid(shop)
    shop.refund(order, "out of stock at the warehouse")
    shop.cancel(order, "payment refunded")
    shop.release(order)
    return order


def _cancelled_first(shop: Shop) -> PlacedOrder:
    """Cancelled by the customer after paying: the saga then refunds it."""
    order = _paid(shop)
    shop.cancel(order, "changed my mind", by=CancelledBy.CUSTOMER)
    shop.refund(order, "order cancelled")
    shop.release(order)
    return order


def _document(application: Application, order_id: str) -> dict[str, Any]:
    with application.engine.connect() as conn:
        status, document = conn.execute(
            text(
                "SELECT status, document FROM order_details WHERE generation = 1 AND order_id = :id"
            ),
            {"id": order_id},
        ).one()
    assert document["status"] == status
    found: dict[str, Any] = document
    return found


def _timeline(document: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(moment["what"], moment["status"]) for moment in document["timeline"]]


def _listed(client: FlaskClient, headers: dict[str, str], status: str) -> list[str]:
    response = client.get(f"/admin/api/orders?status={status}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return [item["order_id"] for item in response.get_json()["items"]]


def test_a_shipped_order_refunded_reads_refunded_with_a_timeline_moment(
    application: Application, shop: Shop, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    shop.add_products(CATALOG)
    order = _returned(shop)

    drain(application, MODELS)

    document = _document(application, order.order_id)
    assert document["status"] == "refunded"
    assert document["tracking_number"] == "TRACK-1"
    assert document["payment"]["status"] == "refunded"
    assert _timeline(document)[-4:] == [
        ("shipped", "shipped"),
        ("inventory committed", None),
        ("refund requested", None),
        ("payment refunded", "refunded"),
    ]
    assert _listed(client, admin_headers, "refunded") == [order.order_id]
    assert _listed(client, admin_headers, "shipped") == []
    response = client.get("/admin/api/orders", headers=admin_headers)
    assert [item["status"] for item in response.get_json()["items"]] == ["refunded"]


def test_a_refund_before_shipping_reads_refunded_until_the_saga_cancels_the_order(
    application: Application, shop: Shop, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    shop.add_products(CATALOG)
    order = _paid(shop)
    shop.refund(order, "out of stock at the warehouse")
    drain(application, MODELS)

    assert _document(application, order.order_id)["status"] == "refunded"
    assert _listed(client, admin_headers, "refunded") == [order.order_id]
    assert _listed(client, admin_headers, "confirmed") == []

    shop.cancel(order, "payment refunded")
    drain(application, MODELS)

    document = _document(application, order.order_id)
    assert document["status"] == "cancelled"
    assert _timeline(document)[-3:] == [
        ("refund requested", None),
        ("payment refunded", "refunded"),
        ("cancelled", "cancelled"),
    ]
    assert _listed(client, admin_headers, "cancelled") == [order.order_id]
    assert _listed(client, admin_headers, "refunded") == []


def test_a_cancelled_order_refunded_stays_cancelled(
    application: Application, shop: Shop, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    shop.add_products(CATALOG)
    order = _cancelled_first(shop)

    drain(application, MODELS)

    document = _document(application, order.order_id)
    assert document["status"] == "cancelled"
    assert document["payment"]["status"] == "refunded"
    assert _timeline(document)[-4:] == [
        ("cancelled", "cancelled"),
        ("refund requested", None),
        ("payment refunded", None),
        ("inventory released", None),
    ]
    assert _listed(client, admin_headers, "cancelled") == [order.order_id]
    assert _listed(client, admin_headers, "refunded") == []


@pytest.mark.parametrize("name", BATCHED)
def test_one_event_per_batch_builds_what_one_batch_builds(
    application: Application, shop: Shop, name: str
) -> None:
    """Whether a refund's status is decided while merging a batch or against the stored
    status, by the read model's own statement, the outcome is the same."""
    shop.add_products(CATALOG)
    orders = {
        "refunded": _returned(shop),
        "cancelled": _refunded_first(shop),
        "stays cancelled": _cancelled_first(shop),
    }
    subscriber = application.read_side.projection(name).subscriber(1)

    lease = sole_lease(application, subscriber)
    with application.engine.connect() as conn:
        for recorded in whole_log(application):
            subscriber.apply(conn, [recorded], lease)
    let_go(application, lease)

    one_by_one = contents(application, name, 1)
    assert one_by_one == rebuilt_from_zero(application, name)
    if name == "order_detail":
        for status, order in orders.items():
            assert _document(application, order.order_id)["status"] == status.split()[-1]
            moments = _document(application, order.order_id)["timeline"]
            assert all("unless" not in moment for moment in moments)
