"""A storefront's whole commerce flow end to end, over HTTP, with the real processes (a
gunicorn API, `rq worker`s, a payments worker, `rq cron`) and the local Stripe: the admin
sets a tax rate, a promotion and a coupon; an anonymous shopper fills a cart, applies the
coupon, signs in (the cart merges) and checks out; the order is paid and confirmed, ships
in two parts, one line comes back, is received and inspected, and is refunded in part at
the provider. Stock, the order's document and the sales figures are checked against the
log, and every read model against a rebuild from the first event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from config.bootstrap import Application
from config.settings import Settings
from tests.e2e.fulfillment_support import (
    CARD_OK,
    Storefront,
    System,
    events_of,
    on_hand,
    running_system,
)
from tests.support.polling import eventually
from tests.support.read_models import contents, rebuilt_from_zero
from tests.support.shop import ADDRESS_DATA, PASSWORD

BILLING = {
    "name": "Ada Lovelace",
    "line1": "Analytical Engines Ltd",
    "line2": "Floor 2",
    "city": "Manchester",
    "region": "Greater Manchester",
    "postal_code": "M1 1AE",
    "country": "GB",
}
READ_MODELS = ("catalog", "order_detail", "sales_analytics", "order_list", "carts")


@pytest.fixture(scope="module")
def system(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    logs = tmp_path_factory.mktemp("commerce")
    with running_system(settings, logs, workers=2, payment_timeout=30) as running:
        yield running


def eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


def test_cart_to_checkout_to_two_shipments_to_a_return_refunded_in_part(
    shop: Storefront, application: Application
) -> None:
    admin = shop.admin
    shop.add_product("MUG-1", stock=10, amount=1250)
    shop.add_product("TEE-1", stock=5, amount=1999)
    pricing = "/admin/api/pricing"
    tax = {"rate_bp": 2000, "prices_include_tax": True}
    shop.call("PUT", f"{pricing}/tax-rates/GB", tax, admin, expect=202)
    promotion = {"description": "T-shirts 5 % off", "percent_bp": 500, "skus": ["TEE-1"]}
    shop.call("POST", f"{pricing}/promotions", promotion, admin, expect=202)
    coupon = {"code": "SAVE10", "description": "10 % off", "usage_limit": 10, "percent_bp": 1000}
    shop.call("POST", f"{pricing}/coupons", coupon, admin, expect=202)

    # An anonymous shopper fills a cart and gives the coupon (lower case: codes ignore case).
    cart_id = shop.call("POST", "/api/carts", {}, expect=201)["cart_id"]
    items = f"/api/carts/{cart_id}/items"
    shop.call("POST", items, {"sku": "MUG-1", "quantity": 3}, expect=202)
    shop.call("POST", items, {"sku": "TEE-1", "quantity": 2}, expect=202)
    shop.call("PUT", f"{items}/MUG-1", {"quantity": 2}, expect=202)
    shop.call("PUT", f"/api/carts/{cart_id}/coupon", {"code": "save10"}, expect=202)

    # Signing in merges the anonymous cart into the customer's.
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    shop.register(email)
    signing_in = {"email": email, "password": PASSWORD, "cart_id": cart_id}
    session = shop.call("POST", "/api/sessions", signing_in, expect=201)
    headers = {"Authorization": f"Bearer {session['access_token']}"}
    assert session["cart_merged"] is True
    mine = session["cart_id"]

    def cart() -> dict[str, Any]:
        query = f"?country=GB&consistency_token={session['consistency_token']}"
        view = shop.call("GET", f"/api/cart{query}", headers=headers, expect=200)
        found: dict[str, Any] = view["cart"]
        assert {line["sku"]: line["quantity"] for line in found["lines"]} == {
            "MUG-1": 2,
            "TEE-1": 2,
        }
        return found

    quote = eventually(cart, timeout=20)["quote"]
    assert quote["coupon_code"] == "SAVE10" and quote["coupon_problem"] is None
    assert quote["subtotal"] == eur(2 * 1250 + 2 * 1999)
    sources = {discount["source"].split(":")[0] for discount in quote["discounts"]}
    assert sources == {"promotion", "coupon"}
    assert [(t["country"], t["rate_bp"]) for t in quote["taxes"]] == [("GB", 2000)]
    assert quote["total"]["amount"] == (
        quote["subtotal"]["amount"]
        - quote["discount_total"]["amount"]
        + quote["tax_total"]["amount"]
        + quote["shipping"]["amount"]
    )

    checkout = {
        "shipping_address": ADDRESS_DATA,
        "billing_address": BILLING,
        "payment": {"token": CARD_OK},
    }
    checked_out = shop.call("POST", f"/api/carts/{mine}/checkout", checkout, headers, expect=202)
    order_id = checked_out["order_id"]
    (placed,) = events_of(application.engine, "OrderPlaced", order_id)
    # The order carries the figures the cart showed, and the readers take them from it.
    for figure in ("subtotal", "discount_total", "tax_total", "shipping", "total"):
        assert placed[figure] == quote[figure], figure
    assert placed["coupon_code"] == "SAVE10" and placed["cart_id"] == mine

    confirmed = shop.wait_for_order(order_id, "confirmed", ["OrderConfirmed"], timeout=30)
    document = confirmed["order"]
    assert document["total"] == quote["total"] and document["tax_total"] == quote["tax_total"]
    assert document["billing_address"] == BILLING
    (intent,) = shop.provider.intents_of(order_id)
    assert (intent["status"], intent["amount"]) == ("succeeded", quote["total"]["amount"])

    # Two shipments: the mugs, then the T-shirts.
    shipments = f"/admin/api/orders/{order_id}/shipments"
    first = {"lines": [{"sku": "MUG-1", "quantity": 2}], "tracking_number": "TRACK-1"}
    shop.call("POST", shipments, first, admin, expect=202)
    part = shop.wait_for_order(order_id, "partially_shipped", ["ReservationCommitted"])
    assert part["order"]["reservation"] == {"status": "partially_committed"}  # the shirts wait
    second = {"lines": [{"sku": "TEE-1", "quantity": 2}], "tracking_number": "TRACK-2"}
    shop.call("POST", shipments, second, admin, expect=202)
    shipped = shop.wait_for_order(order_id, "shipped", ["OrderShipped"])
    assert [s["tracking_number"] for s in shipped["order"]["shipments"]] == ["TRACK-1", "TRACK-2"]
    eventually(
        lambda: _assert_equal(on_hand(application.engine), {"MUG-1": 8, "TEE-1": 3}), timeout=20
    )

    # One T-shirt comes back: requested by the customer, received and inspected.
    asked = {"lines": [{"sku": "TEE-1", "quantity": 1}], "reason": "too small"}
    return_id = shop.call("POST", f"/api/orders/{order_id}/returns", asked, headers, expect=202)[
        "return_id"
    ]
    returns = f"/admin/api/orders/{order_id}/returns/{return_id}"
    shop.call("POST", f"{returns}/receive", {}, admin, expect=202)
    inspected = {"accepted": [{"sku": "TEE-1", "quantity": 1}], "note": "as new"}
    shop.call("POST", f"{returns}/inspect", inspected, admin, expect=202)

    tee = next(line for line in placed["lines"] if line["sku"] == "TEE-1")
    refund = tee["total"]["amount"] // 2  # what one of the two T-shirts was charged

    def refunded() -> dict[str, Any]:
        found = events_of(application.engine, "PaymentRefunded", order_id)
        assert len(found) == 1, found
        event = found[0]
        assert event["refund_id"] == return_id and event["fully_refunded"] is False
        return event

    event = eventually(refunded, timeout=30)
    assert event["amount"] == eur(refund)
    charge = shop.provider.charge(shop.provider.intent(intent["id"])["latest_charge"])
    assert (charge["amount_refunded"], charge["refunded"]) == (refund, False)
    eventually(
        lambda: _assert_equal(on_hand(application.engine), {"MUG-1": 8, "TEE-1": 4}), timeout=20
    )
    assert shop.available() == {"MUG-1": 8, "TEE-1": 4}

    final = shop.wait_for_order(order_id, "shipped", ["PaymentRefunded"])["order"]
    (returned,) = final["returns"]
    assert (returned["status"], returned["refund"]) == ("inspected", eur(refund))
    assert final["refunded_total"] == eur(refund)

    # The sales figures are the log's.
    today = datetime.now(UTC).date().isoformat()
    sales = shop.call(
        "GET", f"/admin/api/analytics/sales?from={today}&to={today}", headers=admin, expect=200
    )
    (day,) = sales["days"]
    assert (day["gross"], day["discounts"], day["tax"]) == (
        placed["subtotal"]["amount"],
        placed["discount_total"]["amount"],
        placed["tax_total"]["amount"],
    )
    assert day["refunded"] == refund
    assert day["net"] == day["gross"] - day["discounts"] - day["refunded"]

    # Every read model the workers kept equals one rebuilt from the first event.
    for name in READ_MODELS:
        active = application.read_side.generations(name).active
        assert contents(application, name, active) == rebuilt_from_zero(application, name), name


def _assert_equal(found: object, expected: object) -> None:
    assert found == expected
