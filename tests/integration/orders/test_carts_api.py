"""Carts through the API, against PostgreSQL and Redis, the carts read model drained by
this process as a worker would: an anonymous cart filled, merged at sign-in and checked
out as an order; prices and stock shown as of now; expiry; refusals that change nothing."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.test import TestResponse

from config.bootstrap import Application, bootstrap
from config.flask_app import create_app
from config.settings import Settings
from inventory.commands import ChangePrice, ReleaseInventory, ReservationLine, ReserveInventory
from kernel.money import Money
from kernel.results import Success
from orders.commands import customer_cart_id
from pricing.commands import CreateCoupon
from tests.support.api_client import Customer
from tests.support.read_models import contents, drain, rebuilt_from_zero
from tests.support.shop import ADDRESS_DATA, PASSWORD

CHECKOUT = {"shipping_address": ADDRESS_DATA, "payment": {"token": "pm_card_visa"}}


def _ok(response: TestResponse, status: int = 202) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def _cart(
    client: FlaskClient,
    application: Application,
    path: str,
    headers: dict[str, str] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    drain(application, ["carts"])
    query = f"?consistency_token={token}" if token else ""
    body = _ok(client.get(path + query, headers=headers or {}), 200)
    assert body["read_model"]["name"] == "carts" and not body["read_model"]["stale"]
    cart: dict[str, Any] = body["cart"]
    return cart


def _lines(cart: dict[str, Any]) -> dict[str, int]:
    return {line["sku"]: line["quantity"] for line in cart["lines"]}


def _placed_events(application: Application) -> list[dict[str, Any]]:
    with application.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT data FROM events WHERE type = 'OrderPlaced' ORDER BY position")
        ).scalars()
        return list(rows)


def eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


def _start(client: FlaskClient) -> str:
    cart_id: str = _ok(client.post("/api/carts"), 201)["cart_id"]
    return cart_id


def test_an_anonymous_cart_is_filled_merged_at_sign_in_and_checked_out_as_an_order(
    client: FlaskClient, application: Application, customer: Customer
) -> None:
    coupon = CreateCoupon("SAVE10", "10 % off", usage_limit=5, percent_bp=1000)
    assert isinstance(application.bus.dispatch(coupon), Success)
    anonymous = _start(client)
    items = f"/api/carts/{anonymous}/items"
    _ok(client.post(items, json={"sku": "MUG-1", "quantity": 2}))
    _ok(client.post(items, json={"sku": "MUG-1", "quantity": 1}))  # adds up
    _ok(client.post(items, json={"sku": "TEE-1", "quantity": 1}))
    changed = _ok(client.put(f"{items}/TEE-1", json={"quantity": 4}))
    cart = _cart(client, application, f"/api/carts/{anonymous}", token=changed["consistency_token"])
    assert _lines(cart) == {"MUG-1": 3, "TEE-1": 4}
    assert cart["subtotal"] == {"amount": 3 * 1250 + 4 * 1999, "currency": "EUR"}
    quote = cart["quote"]  # as the checkout would price it: no coupon yet, free shipping
    assert (quote["subtotal"], quote["discounts"], quote["shipping"]) == (
        cart["subtotal"],
        [],
        eur(0),
    )
    assert quote["total"] == cart["subtotal"] and quote["coupon_problem"] is None
    _ok(client.delete(f"{items}/TEE-1"))
    _ok(client.put(f"/api/carts/{anonymous}/coupon", json={"code": "save10"}))
    mine = customer_cart_id(customer.customer_id)
    _ok(client.post(f"/api/carts/{mine}/items", json={"sku": "MUG-1", "quantity": 1},
                    headers=customer.headers))  # fmt: skip

    signed_in = _ok(
        client.post(
            "/api/sessions",
            json={"email": "ada@example.com", "password": PASSWORD, "cart_id": anonymous},
        ),
        201,
    )

    assert signed_in["cart_id"] == mine and signed_in["cart_merged"] is True
    headers = {"Authorization": f"Bearer {signed_in['access_token']}"}
    cart = _cart(client, application, "/api/cart", headers, signed_in["consistency_token"])
    assert _lines(cart) == {"MUG-1": 4} and cart["coupon_code"] == "SAVE10"
    assert cart["quote"]["discount_total"] == eur(500)  # 10 % of 4 x 12.50
    assert client.get(f"/api/carts/{anonymous}").status_code == 404  # closed by the merge
    assert client.post(items, json={"sku": "MUG-1", "quantity": 1}).status_code == 404

    checked_out = _ok(
        client.post(
            f"/api/carts/{mine}/checkout",
            json=CHECKOUT,
            headers={**headers, "Idempotency-Key": "k1"},
        )
    )

    (placed,) = _placed_events(application)
    assert placed["order_id"] == checked_out["order_id"]
    assert placed["cart_id"] == mine and placed["customer_id"] == customer.customer_id
    assert [(line["sku"], line["quantity"]) for line in placed["lines"]] == [("MUG-1", 4)]
    assert placed["coupon_code"] == "SAVE10" and placed["discount_total"] == eur(500)
    cart = _cart(client, application, "/api/cart", headers, checked_out["consistency_token"])
    assert cart["lines"] == [] and cart["coupon_code"] is None
    assert cart["last_order_id"] == checked_out["order_id"]
    again = client.post(  # the same key again: the same order, nothing new
        f"/api/carts/{mine}/checkout", json=CHECKOUT, headers={**headers, "Idempotency-Key": "k1"}
    )
    assert _ok(again)["order_id"] == checked_out["order_id"]
    assert len(_placed_events(application)) == 1
    # The cart is used again: filled and checked out anew.
    _ok(client.post(f"/api/carts/{mine}/items", json={"sku": "TEE-1", "quantity": 1},
                    headers=headers))  # fmt: skip
    second = _ok(client.post(f"/api/carts/{mine}/checkout", json=CHECKOUT, headers=headers))
    assert second["order_id"] != checked_out["order_id"]
    assert [event["cart_id"] for event in _placed_events(application)] == [mine, mine]
    drain(application, ["carts"])
    assert contents(application, "carts", 1) == rebuilt_from_zero(application, "carts")


def test_checking_out_an_anonymous_cart_merges_it_into_the_customers_first(
    client: FlaskClient, application: Application, customer: Customer
) -> None:
    anonymous = _start(client)
    _ok(client.post(f"/api/carts/{anonymous}/items", json={"sku": "TEE-1", "quantity": 2}))

    checked_out = _ok(
        client.post(f"/api/carts/{anonymous}/checkout", json=CHECKOUT, headers=customer.headers)
    )

    (placed,) = _placed_events(application)
    assert placed["order_id"] == checked_out["order_id"]
    assert placed["cart_id"] == customer_cart_id(customer.customer_id)
    assert [(line["sku"], line["quantity"]) for line in placed["lines"]] == [("TEE-1", 2)]
    assert client.get(f"/api/carts/{anonymous}").status_code == 404


@pytest.fixture
def capped(settings: Settings) -> Iterator[tuple[Flask, Application]]:
    """The API with MAX_RESERVED_UNITS=5."""
    application = bootstrap(dataclasses.replace(settings, max_reserved_units=5))
    app = create_app(application)
    app.testing = True
    yield app, application
    application.close()


def test_a_refused_checkout_leaves_both_carts_as_they_were(
    capped: tuple[Flask, Application], customer: Customer
) -> None:
    app, application = capped
    client = app.test_client()
    anonymous = _start(client)
    _ok(client.post(f"/api/carts/{anonymous}/items", json={"sku": "MUG-1", "quantity": 6}))
    mine = customer_cart_id(customer.customer_id)
    _ok(client.post(f"/api/carts/{mine}/items", json={"sku": "TEE-1", "quantity": 1},
                    headers=customer.headers))  # fmt: skip
    before = {
        cart_id: _cart(client, application, f"/api/carts/{cart_id}", customer.headers)
        for cart_id in (anonymous, mine)
    }

    refused = client.post(  # more units than MAX_RESERVED_UNITS: the order is refused
        f"/api/carts/{anonymous}/checkout", json=CHECKOUT, headers=customer.headers
    )

    assert refused.status_code == 422, refused.get_json()
    assert refused.get_json()["type"] == "/problems/order-too-large"
    assert _placed_events(application) == []
    after = {  # neither merged nor checked out
        cart_id: _cart(client, application, f"/api/carts/{cart_id}", customer.headers)
        for cart_id in (anonymous, mine)
    }
    assert after == before
    _ok(client.delete(f"/api/carts/{mine}/items/TEE-1", headers=customer.headers))
    empty = client.post(f"/api/carts/{mine}/checkout", json=CHECKOUT, headers=customer.headers)
    assert empty.status_code == 422 and empty.get_json()["type"] == "/problems/cart-empty"


def test_a_checkout_whose_coupon_ran_out_is_a_conflict_and_keeps_the_cart(
    client: FlaskClient, application: Application, customer: Customer
) -> None:
    once = CreateCoupon("ONCE", "one use", usage_limit=1, percent_bp=1000)
    assert isinstance(application.bus.dispatch(once), Success)
    mine = customer_cart_id(customer.customer_id)
    add = {"sku": "MUG-1", "quantity": 1}
    _ok(client.post(f"/api/carts/{mine}/items", json=add, headers=customer.headers))
    _ok(client.put(f"/api/carts/{mine}/coupon", json={"code": "once"}, headers=customer.headers))
    used = client.post(  # the one use goes to a direct order
        "/api/orders", json={**CHECKOUT, "lines": [add], "coupon_code": "ONCE"},
        headers=customer.headers,
    )  # fmt: skip
    assert used.status_code == 202, used.get_json()
    before = _cart(client, application, "/api/cart", customer.headers)

    refused = client.post(f"/api/carts/{mine}/checkout", json=CHECKOUT, headers=customer.headers)

    assert refused.status_code == 409, refused.get_json()  # as POST /api/orders answers
    assert refused.get_json()["type"] == "/problems/coupon-exhausted"
    assert len(_placed_events(application)) == 1
    assert _cart(client, application, "/api/cart", customer.headers) == before


def test_the_cart_shows_todays_price_and_stock_beside_what_was_added(
    client: FlaskClient, application: Application
) -> None:
    lines = [{"sku": "MUG-1", "quantity": 5}, {"sku": "TEE-1", "quantity": 1}]
    cart_id = _ok(client.post("/api/carts", json={"lines": lines}), 201)["cart_id"]
    bus = application.bus
    assert isinstance(bus.dispatch(ChangePrice("MUG-1", Money(1400, "EUR"))), Success)
    hold = ReserveInventory("other-order", (ReservationLine("TEE-1", 99),))
    assert isinstance(bus.dispatch(hold), Success)  # one T-shirt left

    cart = _cart(client, application, f"/api/carts/{cart_id}")

    mug, tee = sorted(cart["lines"], key=lambda line: line["sku"])
    assert mug["unit_price"] == eur(1400) and mug["unit_price_when_added"] == eur(1250)
    assert mug["price_changed"] == {"was": eur(1250), "now": eur(1400)}
    assert mug["availability"] is None and mug["available"] == 100
    assert tee["price_changed"] is None and tee["available"] == 1
    assert tee["availability"] is None  # the one asked for is there
    _ok(client.put(f"/api/carts/{cart_id}/items/TEE-1", json={"quantity": 3}))
    tee = next(line for line in _cart(client, application, f"/api/carts/{cart_id}")["lines"]
               if line["sku"] == "TEE-1")  # fmt: skip
    assert tee["availability"] == "Only 1 available."
    assert isinstance(bus.dispatch(ReleaseInventory("other-order")), Success)
    cart = _cart(client, application, f"/api/carts/{cart_id}")
    assert cart["subtotal"] == eur(5 * 1400 + 3 * 1999)


def test_a_customers_cart_is_not_found_for_anyone_else(
    client: FlaskClient,
    application: Application,
    customer: Customer,
    register_customer: Callable[..., Customer],
    admin_headers: dict[str, str],
) -> None:
    mine = customer_cart_id(customer.customer_id)
    _ok(client.post(f"/api/carts/{mine}/items", json={"sku": "MUG-1", "quantity": 1},
                    headers=customer.headers))  # fmt: skip
    drain(application, ["carts"])
    other = register_customer("bob@example.com", "Bob")
    add = {"sku": "MUG-1", "quantity": 1}

    for headers in ({}, other.headers):
        assert client.get(f"/api/carts/{mine}", headers=headers).status_code == 404
        assert client.post(f"/api/carts/{mine}/items", json=add, headers=headers).status_code == 404
        assert client.delete(f"/api/carts/{mine}/coupon", headers=headers).status_code == 404
    stolen = client.post(f"/api/carts/{mine}/checkout", json=CHECKOUT, headers=other.headers)
    assert stolen.status_code == 404
    assert client.get(f"/api/carts/{mine}", headers=admin_headers).status_code == 403
    assert client.get(f"/api/carts/{uuid.uuid4()}").status_code == 404
    forged = {"Authorization": "Bearer forged"}
    assert client.post("/api/carts", headers=forged).status_code == 401
    assert _lines(_cart(client, application, f"/api/carts/{mine}", customer.headers)) == {
        "MUG-1": 1
    }


def test_bad_cart_requests_are_refused_with_field_errors(
    client: FlaskClient, application: Application
) -> None:
    cart_id = _start(client)
    items = f"/api/carts/{cart_id}/items"

    unknown_at_start = client.post("/api/carts", json={"lines": [{"sku": "NOPE-1", "quantity": 1}]})
    assert unknown_at_start.get_json()["type"] == "/problems/unknown-sku"
    bad_start = client.post("/api/carts", json={"lines": [{"sku": "MUG-1"}], "other": 1})
    assert bad_start.status_code == 422
    assert set(bad_start.get_json()["errors"]) == {"lines", "other"}
    bad = client.post(items, json={"sku": "", "quantity": 0})
    unknown = client.post(items, json={"sku": "NOPE-1", "quantity": 1})
    _ok(client.post(items, json={"sku": "MUG-1", "quantity": 1}))
    mixed = client.post(items, json={"sku": "BOOK-1", "quantity": 1})
    too_many = client.post(items, json={"sku": "MUG-1", "quantity": 1000})
    absent = client.put(f"{items}/TEE-1", json={"quantity": 2})

    assert bad.status_code == 422 and set(bad.get_json()["errors"]) == {"sku", "quantity"}
    assert unknown.status_code == 422 and unknown.get_json()["type"] == "/problems/unknown-sku"
    assert mixed.get_json()["type"] == "/problems/mixed-currency"
    assert too_many.get_json()["type"] == "/problems/too-many-units"
    assert absent.status_code == 404 and absent.get_json()["type"] == "/problems/not-in-cart"
    assert _lines(_cart(client, application, f"/api/carts/{cart_id}")) == {"MUG-1": 1}


@pytest.fixture
def short_carts(settings: Settings) -> Iterator[tuple[Flask, Application]]:
    """The API with CART_TTL=1 (second)."""
    application = bootstrap(dataclasses.replace(settings, cart_ttl=1))
    app = create_app(application)
    app.testing = True
    yield app, application
    application.close()


def test_a_cart_left_untouched_past_its_ttl_starts_empty(
    short_carts: tuple[Flask, Application],
) -> None:
    app, application = short_carts
    client = app.test_client()
    cart_id = _start(client)
    _ok(client.post(f"/api/carts/{cart_id}/items", json={"sku": "MUG-1", "quantity": 2}))
    _ok(client.put(f"/api/carts/{cart_id}/coupon", json={"code": "SAVE10"}))
    time.sleep(1.2)

    idle = _cart(client, application, f"/api/carts/{cart_id}")
    added = _ok(client.post(f"/api/carts/{cart_id}/items", json={"sku": "TEE-1", "quantity": 1}))

    assert idle["expired"] is True and idle["lines"] == [] and idle["coupon_code"] is None
    cart = _cart(client, application, f"/api/carts/{cart_id}", token=added["consistency_token"])
    assert _lines(cart) == {"TEE-1": 1} and cart["coupon_code"] is None
    assert cart["expired"] is False
    with application.engine.connect() as conn:
        types = conn.execute(
            text("SELECT type FROM events WHERE stream_id = :s ORDER BY version"),
            {"s": f"cart-{cart_id}"},
        ).scalars()
        assert list(types)[-2:] == ["CartExpired", "CartItemAdded"]
    ttl = application.redis.pttl(f"rm:carts:1:cart:{cart_id}")
    assert 0 < ttl <= 61_000  # the key goes with the cart (CART_TTL, plus a minute's grace)


def test_signing_in_with_a_cart_that_cannot_be_merged_still_signs_in(
    client: FlaskClient, application: Application, customer: Customer
) -> None:
    sign_in = {"email": "ada@example.com", "password": PASSWORD}
    mine = customer_cart_id(customer.customer_id)

    unknown = _ok(client.post("/api/sessions", json={**sign_in, "cart_id": str(uuid.uuid4())}), 201)
    own = _ok(client.post("/api/sessions", json={**sign_in, "cart_id": mine}), 201)
    without = _ok(client.post("/api/sessions", json=sign_in), 201)

    for signed_in in (unknown, own, without):
        assert signed_in["cart_id"] == mine and signed_in["cart_merged"] is False
        assert signed_in["consistency_token"] is None
    bad = client.post("/api/sessions", json={**sign_in, "cart_id": "not-a-cart"})
    assert bad.status_code == 422 and set(bad.get_json()["errors"]) == {"cart_id"}
