"""The read side of commerce depth, fed by the events alone: an order's price breakdown,
billing address, shipments, returns and refunds in its detail; `partially_shipped` in the
list; gross, discounts, tax, shipping, refunds and net per day and units returned per
product in the sales figures. Nothing is recomputed: every figure is the events'. An
order placed before the breakdown (OrderPlaced v2) reads as untaxed and undiscounted,
billed where it shipped. And the whole lot rebuilt from zero equals what was kept one
event at a time."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import text

from config.bootstrap import Application
from kernel.codec import to_data
from kernel.horizon import declare_writer
from kernel.messages import Event, Metadata, new_id
from kernel.money import Money
from kernel.partitions import slot_of
from kernel.personal_data import ENVELOPE, seal
from orders.events import (
    Address,
    Discount,
    ItemLine,
    OrderConfirmed,
    OrderPlaced,
    OrderShipped,
    PricedLine,
    ReturnInspected,
    ReturnReceived,
    ReturnRequested,
    ShipmentDispatched,
    TaxLine,
)
from payments.events import PaymentRefunded, RefundFailed
from tests.integration.projections.support import day_of, order_events
from tests.support.api_client import Customer
from tests.support.read_models import contents, drain, rebuilt_from_zero

MODELS = ("order_detail", "order_list", "sales_analytics")
SHIPPED_TO = Address("Ada Lovelace", "Hauptstr. 1", "Berlin", "10115", "DE", "Hinterhaus")
BILLED_TO = Address("Ada Lovelace", "12 St James's Square", "London", "SW1Y 4JH", "GB")


def _eur(amount: int) -> Money:
    return Money(amount, "EUR")


def _json_eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


@dataclass
class Log:
    """Appends events as the write side would, one transaction each, in order."""

    application: Application
    after_each: Callable[[], None] = lambda: None  # run after every append
    versions: dict[str, int] = field(default_factory=dict)

    def append(self, stream_id: str, stream_type: str, *events: Event) -> None:
        expected = self.versions.get(stream_id, 0)
        with self.application.engine.begin() as conn:
            self.application.store.append(
                conn,
                stream_id=stream_id,
                stream_type=stream_type,
                expected_version=expected,
                events=[(event, Metadata()) for event in events],
            )
        self.versions[stream_id] = expected + len(events)
        self.after_each()

    def order(self, order_id: str, *events: Event) -> None:
        self.append(f"order-{order_id}", "order", *events)

    def payment(self, order_id: str, *events: Event) -> None:
        self.append(f"payment-{order_id}-refund-1", "payment", *events)


def _discounted_and_taxed(order_id: str, customer_id: str) -> OrderPlaced:
    """Two mugs at 10 % off (a promotion) and a shirt, with a 5 EUR coupon spread over
    both lines, 19 % German tax on what is left and on the shipping."""
    mugs = PricedLine("MUG-1", "Enamel mug", 2, _eur(1250), _eur(2500), _eur(500), _eur(380),
                      _eur(2380))  # fmt: skip
    shirt = PricedLine("TEE-1", "Logo T-shirt", 1, _eur(1999), _eur(1999), _eur(250), _eur(332),
                       _eur(2081))  # fmt: skip
    return OrderPlaced(
        order_id=order_id,
        customer_id=customer_id,
        lines=(mugs, shirt),
        subtotal=_eur(4499),
        shipping=_eur(499),
        total=_eur(4499 - 750 + 807 + 499),
        shipping_address=SHIPPED_TO,
        payment_token="pm_card_visa",
        discounts=(
            Discount("promotion:mugs-10", "10 % off mugs", _eur(250)),
            Discount("coupon:SAVE5", "5 EUR off", _eur(500)),
        ),
        discount_total=_eur(750),
        taxes=(TaxLine("DE", 1900, _eur(2000 + 1749 + 499), _eur(807)),),
        tax_total=_eur(807),
        billing_address=BILLED_TO,
        prices_include_tax=True,
        coupon_code="SAVE5",
    )


def _ship_return_and_refund(log: Log, order_id: str) -> None:
    """Two shipments, then one mug comes back chipped and is refunded (its share)."""
    log.order(order_id, ShipmentDispatched(order_id, "s-1", (ItemLine("MUG-1", 1),), "TRK-1"))
    log.order(
        order_id,
        ShipmentDispatched(order_id, "s-2", (ItemLine("MUG-1", 1), ItemLine("TEE-1", 1)), "TRK-2"),
        OrderShipped(order_id, "TRK-2"),
    )
    log.order(order_id, ReturnRequested(order_id, "r-1", (ItemLine("MUG-1", 2),), "chipped"))
    log.order(order_id, ReturnReceived(order_id, "r-1"))
    log.order(
        order_id,
        ReturnInspected(
            order_id,
            "r-1",
            (ItemLine("MUG-1", 1),),
            (ItemLine("MUG-1", 1),),
            _eur(1190),
            "one was fine",
        ),
    )
    log.payment(
        order_id,
        PaymentRefunded(order_id, _eur(1190), "return r-1", "re_1", "r-1", False, _eur(1190)),
    )


def _placed_at_version_2(application: Application, order_id: str, customer_id: str) -> None:
    """An OrderPlaced as stored before the breakdown: no discounts, taxes, billing address
    (nor the addresses' second line and region), the shipping address sealed alone."""
    address = {name: value for name, value in to_data(BILLED_TO).items()
               if name not in ("line2", "region")}  # fmt: skip
    line = {"sku": "MUG-1", "name": "Enamel mug", "quantity": 1,
            "unit_price": _json_eur(1250), "line_total": _json_eur(1250)}  # fmt: skip
    with application.engine.begin() as conn:
        key = application.store.personal_keys.key_for_sealing(conn, customer_id)
        data = {
            "order_id": order_id, "customer_id": customer_id, "lines": [line],
            "subtotal": _json_eur(1250), "shipping": _json_eur(499), "total": _json_eur(1749),
            "payment_token": "pm_card_visa",
            ENVELOPE: seal(key, customer_id, {"shipping_address": address}),
        }  # fmt: skip
        declare_writer(conn)
        conn.execute(
            text(
                "INSERT INTO events (stream_id, stream_type, version, type, schema_version,"
                " data, metadata, partition_key, slot) VALUES (:stream, 'order', 1,"
                " 'OrderPlaced', 2, CAST(:data AS jsonb), CAST(:meta AS jsonb), :key, :slot)"
            ),
            {
                "stream": f"order-{order_id}",
                "data": json.dumps(data),
                "meta": json.dumps(Metadata().to_json()),
                "key": order_id,
                "slot": slot_of(order_id),
            },
        )


def _commerce_log(
    application: Application, customer_id: str, after_each: Callable[[], None]
) -> tuple[str, str]:
    """A v3 order shipped in two parts, partly returned and partly refunded, and a v2
    order confirmed; `after_each` runs after every append. Their ids."""
    log = Log(application, after_each)
    taxed, old = new_id(), new_id()
    log.order(taxed, _discounted_and_taxed(taxed, customer_id))
    log.order(taxed, OrderConfirmed(taxed))
    _placed_at_version_2(application, old, customer_id)
    log.versions[f"order-{old}"] = 1
    after_each()
    log.order(old, OrderConfirmed(old))
    _ship_return_and_refund(log, taxed)
    return taxed, old


def _at(application: Application, order_id: str) -> dict[str, list[str]]:
    """When each type of event about the order occurred, in log order."""
    found: dict[str, list[str]] = {}
    for event_type, occurred_at, _ in order_events(application, order_id):
        found.setdefault(event_type, []).append(occurred_at)
    return found


def test_an_order_reads_as_charged_shipped_returned_and_refunded(
    application: Application,
    client: FlaskClient,
    admin_headers: dict[str, str],
    register_customer: Callable[..., Customer],
) -> None:
    ada = register_customer()
    taxed, old = _commerce_log(application, ada.customer_id, lambda: None)
    drain(application, MODELS)

    at = _at(application, taxed)
    response = client.get(f"/api/orders/{taxed}", headers=ada.headers)
    assert response.status_code == 200, response.get_json()
    order = response.get_json()["order"]
    breakdown = to_data(_discounted_and_taxed(taxed, ada.customer_id))
    for name in ("lines", "subtotal", "discounts", "discount_total", "taxes", "tax_total",
                 "shipping", "total"):  # fmt: skip
        assert order[name] == breakdown[name], name
    assert order["total"] == _json_eur(5055)
    assert (order["prices_include_tax"], order["coupon_code"], order["cart_id"]) == (
        True,
        "SAVE5",
        None,
    )
    assert order["shipping_address"] == to_data(SHIPPED_TO)
    assert order["billing_address"] == to_data(BILLED_TO)
    assert order["status"] == "shipped"
    assert order["tracking_number"] == "TRK-2"
    assert order["shipments"] == [
        {"shipment_id": "s-1", "lines": [{"sku": "MUG-1", "quantity": 1}],
         "tracking_number": "TRK-1", "at": at["ShipmentDispatched"][0]},
        {"shipment_id": "s-2",
         "lines": [{"sku": "MUG-1", "quantity": 1}, {"sku": "TEE-1", "quantity": 1}],
         "tracking_number": "TRK-2", "at": at["ShipmentDispatched"][1]},
    ]  # fmt: skip
    assert order["returns"] == [
        {
            "return_id": "r-1",
            "lines": [{"sku": "MUG-1", "quantity": 2}],
            "reason": "chipped",
            "status": "inspected",
            "accepted": [{"sku": "MUG-1", "quantity": 1}],
            "rejected": [{"sku": "MUG-1", "quantity": 1}],
            "refund": _json_eur(1190),
            "note": "one was fine",
            "requested_at": at["ReturnRequested"][0],
            "received_at": at["ReturnReceived"][0],
            "inspected_at": at["ReturnInspected"][0],
        }
    ]
    assert order["refunds"] == [
        {"refund_id": "r-1", "amount": _json_eur(1190), "reason": "return r-1",
         "reference": "re_1", "at": at["PaymentRefunded"][0]},
    ]  # fmt: skip
    assert order["refunded_total"] == _json_eur(1190)
    assert order["payment"]["status"] == "partially_refunded"
    assert [(m["what"], m["status"]) for m in order["timeline"]] == [
        ("placed", "pending"),
        ("confirmed", "confirmed"),
        ("shipment dispatched", "partially_shipped"),
        ("shipment dispatched", "partially_shipped"),
        ("shipped", "shipped"),
        ("return requested", None),
        ("return received", None),
        ("return inspected", None),
        ("payment partly refunded", None),
    ]
    admin = client.get(f"/admin/api/orders/{taxed}", headers=admin_headers).get_json()["order"]
    assert admin == order

    # The v2 order: no discount, no tax, billed where it shipped.
    order = client.get(f"/api/orders/{old}", headers=ada.headers).get_json()["order"]
    address = to_data(BILLED_TO) | {"line2": "", "region": ""}
    assert (order["shipping_address"], order["billing_address"]) == (address, address)
    assert order["lines"] == [
        {"sku": "MUG-1", "name": "Enamel mug", "quantity": 1, "unit_price": _json_eur(1250),
         "line_total": _json_eur(1250), "discount": _json_eur(0), "tax": _json_eur(0),
         "total": _json_eur(1250)},
    ]  # fmt: skip
    assert (order["discounts"], order["taxes"]) == ([], [])
    assert (order["discount_total"], order["tax_total"]) == (_json_eur(0), _json_eur(0))
    assert (order["prices_include_tax"], order["coupon_code"]) == (False, None)
    assert (order["status"], order["shipments"], order["returns"], order["refunds"]) == (
        "confirmed",
        [],
        [],
        [],
    )


def test_a_shipment_reads_partially_shipped_in_the_list_and_a_partial_refund_does_not_refund(
    application: Application,
    client: FlaskClient,
    admin_headers: dict[str, str],
    register_customer: Callable[..., Customer],
) -> None:
    ada = register_customer()
    log = Log(application)
    order_id = new_id()
    log.order(order_id, _discounted_and_taxed(order_id, ada.customer_id), OrderConfirmed(order_id))
    log.order(order_id, ShipmentDispatched(order_id, "s-1", (ItemLine("MUG-1", 1),), "TRK-1"))
    drain(application, ["order_list", "order_detail"])

    listed = client.get("/admin/api/orders?status=partially_shipped", headers=admin_headers)
    assert listed.status_code == 200, listed.get_json()
    assert [(o["order_id"], o["status"]) for o in listed.get_json()["items"]] == [
        (order_id, "partially_shipped")
    ]
    mine = client.get("/api/orders", headers=ada.headers).get_json()["items"]
    assert [o["status"] for o in mine] == ["partially_shipped"]

    log.payment(
        order_id,
        PaymentRefunded(order_id, _eur(500), "goodwill", "re_9", "g-1", False, _eur(500)),
    )
    drain(application, ["order_list", "order_detail"])
    (summary,) = client.get("/api/orders", headers=ada.headers).get_json()["items"]
    assert summary["status"] == "partially_shipped"
    detail = client.get(f"/api/orders/{order_id}", headers=ada.headers).get_json()["order"]
    assert (detail["status"], detail["refunded_total"]) == ("partially_shipped", _json_eur(500))

    # A later refund the provider refuses leaves the payment as the first left it.
    log.payment(order_id, RefundFailed(order_id, _eur(300), "expired_card", "g-2", _eur(500)))
    drain(application, ["order_detail"])
    detail = client.get(f"/api/orders/{order_id}", headers=ada.headers).get_json()["order"]
    assert detail["payment"]["status"] == "partially_refunded"
    assert detail["refunded_total"] == _json_eur(500)


def test_sales_count_gross_discounts_tax_shipping_refunds_net_and_returned_units(
    application: Application,
    client: FlaskClient,
    admin_headers: dict[str, str],
    register_customer: Callable[..., Customer],
) -> None:
    ada = register_customer()
    taxed, old = _commerce_log(application, ada.customer_id, lambda: None)
    drain(application, ["sales_analytics"])

    confirmed = {day_of(_at(application, o)["OrderConfirmed"][0]) for o in (taxed, old)}
    refunded_on = day_of(_at(application, taxed)["PaymentRefunded"][0])
    days = sorted(confirmed | {refunded_on})
    response = client.get(
        f"/admin/api/analytics/sales?from={days[0]}&to={days[-1]}", headers=admin_headers
    )
    assert response.status_code == 200
    answered = response.get_json()["days"]
    totals = {
        name: sum(day[name] for day in answered)
        for name in (
            "orders",
            "revenue",
            "gross",
            "discounts",
            "tax",
            "shipping",
            "refunds",
            "refunded",
            "net",
            "cancellations",
        )
    }
    assert totals == {
        "orders": 2,
        "revenue": 5055 + 1749,
        "gross": 4499 + 1250,
        "discounts": 750,
        "tax": 807,
        "shipping": 499 + 499,
        "refunds": 1,
        "refunded": 1190,
        "net": 4499 + 1250 - 750 - 1190,
        "cancellations": 0,
    }
    for day in answered:
        assert day["net"] == day["gross"] - day["discounts"] - day["refunded"]

    # A partial refund leaves the sale standing; the returned mug counts as returned.
    top = client.get("/admin/api/analytics/top-products", headers=admin_headers).get_json()
    assert top["items"] == [
        {"sku": "MUG-1", "name": "Enamel mug", "currency": "EUR", "units": 3,
         "revenue": 2500 + 1250, "returned": 1},
        {"sku": "TEE-1", "name": "Logo T-shirt", "currency": "EUR", "units": 1,
         "revenue": 1999, "returned": 0},
    ]  # fmt: skip
    (customer,) = contents(application, "sales_analytics", 1)["sales_customers"]
    assert (customer["orders"], customer["total_spent"]) == (2, 5055 + 1749)


def test_rebuilt_from_zero_the_commerce_read_side_equals_the_one_kept_event_by_event(
    application: Application, register_customer: Callable[..., Customer]
) -> None:
    """Kept one append at a time, every change after the placement goes through SQL
    against the stored document; rebuilt, the whole log is a batch folded in memory."""
    ada = register_customer()
    _commerce_log(application, ada.customer_id, lambda: drain(application, MODELS))
    for name in MODELS:
        kept = contents(application, name, 1)
        assert kept and rebuilt_from_zero(application, name) == kept, name
    detail = contents(application, "order_detail", 1)["order_details"]
    assert {row["status"] for row in detail} == {"shipped", "confirmed"}
