from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import text

from config.bootstrap import Application
from orders.events import CancelledBy
from tests.integration.projections.support import day_of, order_events
from tests.support.event_log import event_data
from tests.support.read_models import contents, drain
from tests.support.shop import CATALOG, Shop


def _on(application: Application, order_id: str, event_type: str) -> date:
    (occurred_at,) = [at for t, at, _ in order_events(application, order_id) if t == event_type]
    return day_of(occurred_at)


def test_sales_count_confirmed_orders_per_day_and_take_back_cancelled_ones(
    application: Application, shop: Shop, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    shop.add_products(CATALOG)
    ada = shop.customer("ada@example.com", "Ada Lovelace")
    bob = shop.customer("bob@example.com", "Bob Babbage")
    kept = shop.place(ada, {"MUG-1": 2, "TEE-1": 1})  # 4998 EUR
    for step in (shop.reserve, shop.pay, shop.confirm):
        step(kept)
    refunded = shop.place(ada, {"BOOK-1": 1})  # 1999 GBP
    for step in (shop.reserve, shop.pay, shop.confirm, shop.cancel, shop.refund, shop.release):
        step(refunded)
    shipped = shop.place(bob, {"TEE-1": 4})  # 7996 EUR, ships free
    for step in (shop.reserve, shop.pay, shop.confirm, shop.ship, shop.commit):
        step(shipped)
    dropped = shop.place(bob, {"MUG-1": 1})  # 1749 EUR, cancelled while pending
    shop.cancel(dropped, by=CancelledBy.CUSTOMER)
    pending = shop.place(bob, {"MUG-1": 1})  # 1749 EUR, never confirmed

    drain(application, ["sales_analytics"])

    figures_of_a_day = ("orders", "revenue", "cancellations", "refunds", "refunded", "gross",
                        "discounts", "tax", "shipping")  # fmt: skip
    daily: dict[tuple[date, str], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(figures_of_a_day, 0)
    )
    for order in (kept, refunded, shipped):
        figures = daily[(_on(application, order.order_id, "OrderConfirmed"), order.total.currency)]
        placed = event_data(application, order.order_id, "OrderPlaced")
        figures["orders"] += 1
        figures["revenue"] += order.total.amount
        figures["gross"] += placed["subtotal"]["amount"]
        figures["shipping"] += placed["shipping"]["amount"]  # no discount, no tax yet
    for order in (refunded, dropped):
        daily[(_on(application, order.order_id, "OrderCancelled"), order.total.currency)][
            "cancellations"
        ] += 1
    refund = daily[(_on(application, refunded.order_id, "PaymentRefunded"), "GBP")]
    refund["refunds"] += 1
    refund["refunded"] += 1999
    confirmed_on = {
        order.order_id: _on(application, order.order_id, "OrderConfirmed")
        for order in (kept, refunded, shipped)
    }

    stored = contents(application, "sales_analytics", 1)
    assert stored["sales_daily"] == sorted(
        (
            {"day": day, "currency": currency, **figures}
            for (day, currency), figures in daily.items()
        ),
        key=repr,
    )
    assert stored["sales_products"] == sorted(
        [
            {"sku": "BOOK-1", "currency": "GBP", "name": "Paperback", "units": 0, "revenue": 0}
            | {"returned": 0},
            {"sku": "MUG-1", "currency": "EUR", "name": "Enamel mug", "units": 2, "revenue": 2500}
            | {"returned": 0},
            {
                "sku": "TEE-1",
                "currency": "EUR",
                "name": "Logo T-shirt",
                "units": 5,
                "revenue": 9995,
                "returned": 0,
            },
        ],
        key=repr,
    )
    assert stored["sales_customers"] == sorted(
        [
            {"customer_id": ada, "currency": "EUR", "orders": 1, "total_spent": 4998},
            {"customer_id": ada, "currency": "GBP", "orders": 0, "total_spent": 0},
            {"customer_id": bob, "currency": "EUR", "orders": 1, "total_spent": 7996},
        ],
        key=repr,
    )
    assert sorted(
        (row["order_id"], row["total"], row["confirmed_on"]) for row in stored["sales_orders"]
    ) == sorted(
        (order.order_id, order.total.amount, confirmed_on.get(order.order_id))
        for order in (kept, refunded, shipped, dropped, pending)
    )

    days = sorted(day for day, _ in daily)
    response = client.get(
        f"/admin/api/analytics/sales?from={days[0]}&to={days[-1]}", headers=admin_headers
    )
    assert response.status_code == 200
    answered = response.get_json()
    assert answered["days"] == [
        {
            "day": day.isoformat(),
            "currency": currency,
            **figures,
            "average_order_value": figures["revenue"] // figures["orders"]
            if figures["orders"]
            else 0,
            "net": figures["gross"] - figures["discounts"] - figures["refunded"],
        }
        for (day, currency), figures in sorted(daily.items())
    ]
    assert answered["read_model"]["lag_events"] == 0
    if len(days) == 1:  # the usual case: everything happened on one day
        assert [
            (
                d["currency"],
                d["orders"],
                d["revenue"],
                d["average_order_value"],
                d["cancellations"],
                d["refunds"],
                d["refunded"],
            )
            for d in answered["days"]
        ] == [
            ("EUR", 2, 12994, 6497, 1, 0, 0),
            ("GBP", 1, 1999, 1999, 1, 1, 1999),
        ]

    response = client.get("/admin/api/analytics/top-products", headers=admin_headers)
    assert response.status_code == 200
    top: list[dict[str, Any]] = response.get_json()["items"]
    assert top == [
        {"sku": "TEE-1", "name": "Logo T-shirt", "currency": "EUR", "units": 5, "revenue": 9995}
        | {"returned": 0},
        {"sku": "MUG-1", "name": "Enamel mug", "currency": "EUR", "units": 2, "revenue": 2500}
        | {"returned": 0},
    ]


def _taken_out(application: Application) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(sales_products, sales_customers) of generation 1, without names."""
    stored = contents(application, "sales_analytics", 1)
    products = [{k: v for k, v in row.items() if k != "name"} for row in stored["sales_products"]]
    return products, stored["sales_customers"]


def test_a_return_or_a_refund_and_a_cancellation_take_a_sale_out_once(
    application: Application, shop: Shop
) -> None:
    shop.add_products(CATALOG)
    ada = shop.customer("ada@example.com", "Ada Lovelace")
    kept = shop.place(ada, {"MUG-1": 4})  # 5000 EUR, ships free
    returned = shop.place(ada, {"TEE-1": 3})  # 5997 EUR
    refunded_first = shop.place(ada, {"TEE-1": 1})  # 2498 EUR
    cancelled_first = shop.place(ada, {"MUG-1": 1})  # 1749 EUR
    for order in (kept, returned, refunded_first, cancelled_first):
        for step in (shop.reserve, shop.pay, shop.confirm):
            step(order)
    for step in (shop.ship, shop.commit, shop.refund):
        step(returned)
    shop.refund(refunded_first, "out of stock")
    shop.cancel(refunded_first, "payment refunded")  # as the saga does
    shop.cancel(cancelled_first, "changed my mind", by=CancelledBy.CUSTOMER)
    shop.refund(cancelled_first, "order cancelled")  # as the saga does

    drain(application, ["sales_analytics"])

    products, customers = _taken_out(application)
    assert products == [
        {"sku": "MUG-1", "currency": "EUR", "units": 4, "revenue": 5000, "returned": 0},
        {"sku": "TEE-1", "currency": "EUR", "units": 0, "revenue": 0, "returned": 0},
    ]
    assert customers == [{"customer_id": ada, "currency": "EUR", "orders": 1, "total_spent": 5000}]
    (day,) = contents(application, "sales_analytics", 1)["sales_daily"]
    # Revenue is what was taken on the day; the refunds are told apart.
    assert (day["orders"], day["revenue"]) == (4, 5000 + 5997 + 2498 + 1749)
    assert (day["cancellations"], day["refunds"], day["refunded"]) == (2, 3, 5997 + 2498 + 1749)


def test_orders_from_before_the_withdrawn_flag_keep_the_old_rule(
    application: Application, shop: Shop
) -> None:
    """Rows written before migration 0009 say nothing of what was taken out: a
    cancellation takes their sale out, a refund never does (until a rebuild)."""
    shop.add_products(CATALOG)
    ada = shop.customer("ada@example.com", "Ada Lovelace")
    returned, cancelled = shop.place(ada, {"TEE-1": 3}), shop.place(ada, {"MUG-1": 1})
    for order in (returned, cancelled):
        for step in (shop.reserve, shop.pay, shop.confirm):
            step(order)
    shop.ship(returned)
    drain(application, ["sales_analytics"])
    with application.engine.begin() as conn:
        conn.execute(text("UPDATE sales_orders SET withdrawn = NULL"))

    shop.refund(returned, "sent back")
    shop.cancel(cancelled, "changed my mind", by=CancelledBy.CUSTOMER)
    shop.refund(cancelled, "order cancelled")
    drain(application, ["sales_analytics"])

    products, customers = _taken_out(application)
    assert products == [
        {"sku": "MUG-1", "currency": "EUR", "units": 0, "revenue": 0, "returned": 0},
        {"sku": "TEE-1", "currency": "EUR", "units": 3, "revenue": 5997, "returned": 0},
    ]
    assert customers == [{"customer_id": ada, "currency": "EUR", "orders": 1, "total_spent": 5997}]
