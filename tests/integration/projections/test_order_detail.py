from __future__ import annotations

from datetime import datetime
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import text

from config.bootstrap import Application
from inventory.commands import AddProduct
from kernel.money import Money
from orders.domain import whole_shipment_id
from orders.events import CancelledBy
from tests.integration.projections.support import order_events
from tests.support.event_log import event_data
from tests.support.payments import DECLINED
from tests.support.read_models import drain
from tests.support.shop import ADDRESS_DATA, CATALOG, Shop


def _row(application: Application, order_id: str) -> dict[str, Any]:
    with application.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT customer_id, status, placed_at, updated_at, document FROM order_details"
                " WHERE generation = 1 AND order_id = :id"
            ),
            {"id": order_id},
        ).mappings()
        return dict(row.one())


def _moment(what: str, status: str | None, event: str, at: dict[str, str]) -> dict[str, Any]:
    return {"what": what, "status": status, "event": event, "at": at[event]}


def _eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


def test_a_shipped_order_is_one_document_with_a_timeline_moment_per_event(
    application: Application, shop: Shop, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    shop.add_products(CATALOG)
    ada = shop.customer("ada@example.com", "Ada Lovelace")
    order = shop.place(ada, {"MUG-1": 2, "TEE-1": 1})
    shop.reserve(order)
    shop.pay(order)
    shop.confirm(order)
    shop.ship(order, "TRACK-1")
    shop.commit(order)

    drain(application, ["order_detail"])

    events = order_events(application, order.order_id)
    at = {event_type: occurred_at for event_type, occurred_at, _ in events}
    charge = event_data(application, order.order_id, "PaymentSucceeded")["provider_reference"]
    expected = {
        "order_id": order.order_id,
        "customer_id": ada,
        "status": "shipped",
        "lines": [
            {
                "sku": "MUG-1",
                "name": "Enamel mug",
                "quantity": 2,
                "unit_price": _eur(1250),
                "line_total": _eur(2500),
                "discount": _eur(0),
                "tax": _eur(0),
                "total": _eur(2500),
            },
            {
                "sku": "TEE-1",
                "name": "Logo T-shirt",
                "quantity": 1,
                "unit_price": _eur(1999),
                "line_total": _eur(1999),
                "discount": _eur(0),
                "tax": _eur(0),
                "total": _eur(1999),
            },
        ],
        "subtotal": _eur(4499),
        "discounts": [],
        "discount_total": _eur(0),
        "taxes": [],
        "tax_total": _eur(0),
        "shipping": _eur(499),
        "total": _eur(4998),
        "prices_include_tax": False,
        "coupon_code": None,
        "cart_id": None,
        "shipping_address": ADDRESS_DATA | {"line2": "", "region": ""},
        "billing_address": ADDRESS_DATA | {"line2": "", "region": ""},
        "item_count": 3,
        "placed_at": at["OrderPlaced"],
        "payment": {"status": "succeeded", "reference": charge, "amount": _eur(4998)},
        "reservation": {"status": "committed"},
        "tracking_number": "TRACK-1",
        "cancellation": None,
        "shipments": [  # ShipOrder ships all of it as one shipment
            {
                "shipment_id": whole_shipment_id(order.order_id),
                "lines": [{"sku": "MUG-1", "quantity": 2}, {"sku": "TEE-1", "quantity": 1}],
                "tracking_number": "TRACK-1",
                "at": at["ShipmentDispatched"],
            }
        ],
        "returns": [],
        "refunds": [],
        "refunded_total": _eur(0),
        "timeline": [
            _moment("placed", "pending", "OrderPlaced", at),
            _moment("inventory reserved", None, "InventoryReserved", at),
            _moment("payment requested", None, "PaymentRequested", at),
            _moment("payment succeeded", None, "PaymentSucceeded", at),
            _moment("confirmed", "confirmed", "OrderConfirmed", at),
            _moment("shipment dispatched", "partially_shipped", "ShipmentDispatched", at),
            _moment("shipped", "shipped", "OrderShipped", at),
            _moment("inventory committed", None, "ReservationCommitted", at),
        ],
    }
    stored = _row(application, order.order_id)
    # The address is kept sealed with Ada's key; the query opens it.
    sealed = stored["document"].pop("personal")
    assert sealed["subject"] == ada and ADDRESS_DATA["line1"] not in str(sealed)
    assert stored == {
        "customer_id": ada,
        "status": "shipped",
        "placed_at": datetime.fromisoformat(at["OrderPlaced"]),
        "updated_at": datetime.fromisoformat(at["ReservationCommitted"]),
        "document": {
            name: value
            for name, value in expected.items()
            if name not in ("shipping_address", "billing_address")
        },
    }

    response = client.get(f"/admin/api/orders/{order.order_id}", headers=admin_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["order"] == expected
    assert [event["type"] for event in body["history"]] == [event[0] for event in events]
    assert body["read_model"] == {
        "name": "order_detail",
        "lag_events": 0,
        "lag_seconds": 0.0,
        "stale": False,
    }
    assert response.headers["X-Read-Model-Lag"] == "0"


def test_cancelled_declined_and_short_orders_say_why_in_their_documents(
    application: Application, shop: Shop
) -> None:
    shop.add_products([*CATALOG, AddProduct("RARE-1", "Signed print", Money(9900, "EUR"), 5)])
    ada = shop.customer("ada@example.com", "Ada Lovelace")
    refunded = shop.place(ada, {"MUG-1": 2, "TEE-1": 1})
    shop.reserve(refunded)
    shop.pay(refunded)
    shop.confirm(refunded)
    shop.cancel(refunded, "changed my mind", by=CancelledBy.CUSTOMER)
    shop.refund(refunded, "cancelled after payment")
    shop.release(refunded)
    declined = shop.place(ada, {"TEE-1": 1}, token=DECLINED)
    shop.reserve(declined)
    shop.pay(declined)
    shop.release(declined)
    shop.cancel(declined, "payment failed")
    short = shop.place(ada, {"RARE-1": 6})
    shop.reserve(short)
    shop.cancel(short, "out of stock")

    drain(application, ["order_detail"])

    refund = event_data(application, refunded.order_id, "PaymentRefunded")["provider_reference"]
    document = _row(application, refunded.order_id)["document"]
    assert (document["status"], document["cancellation"]) == (
        "cancelled",
        {"reason": "changed my mind", "cancelled_by": "customer"},
    )
    assert document["payment"] == {
        "status": "refunded",
        "refund_reference": refund,
        "refund_reason": "cancelled after payment",
        "amount": _eur(4998),
    }
    assert document["reservation"] == {"status": "released"}
    assert [moment["what"] for moment in document["timeline"]] == [
        "placed",
        "inventory reserved",
        "payment requested",
        "payment succeeded",
        "confirmed",
        "cancelled",
        "refund requested",
        "payment refunded",
        "inventory released",
    ]

    document = _row(application, declined.order_id)["document"]
    assert document["status"] == "cancelled"
    assert document["cancellation"] == {"reason": "payment failed", "cancelled_by": "system"}
    assert document["payment"] == {
        "status": "failed",
        "reason": "generic_decline",
        "amount": _eur(1999 + 499),
    }
    assert document["reservation"] == {"status": "released"}
    assert [moment["what"] for moment in document["timeline"]] == [
        "placed",
        "inventory reserved",
        "payment requested",
        "payment failed",
        "inventory released",
        "cancelled",
    ]

    document = _row(application, short.order_id)["document"]
    assert document["status"] == "cancelled"
    assert document["payment"] == {"status": "not_started"}
    assert document["reservation"] == {
        "status": "failed",
        "shortages": [{"sku": "RARE-1", "requested": 6, "available": 5}],
    }
    assert [moment["what"] for moment in document["timeline"]] == [
        "placed",
        "inventory short",
        "cancelled",
    ]
    assert [moment["status"] for moment in document["timeline"]] == ["pending", None, "cancelled"]
