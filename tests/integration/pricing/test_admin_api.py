"""The admin pricing endpoints over HTTP: each change is a command recorded with the
admin as the actor, each list reads what the commands wrote, bad input is a 422 that
lists every field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.test import TestResponse

from config.bootstrap import Application
from kernel.messages import Event
from kernel.money import Money
from pricing.events import (
    CouponCreated,
    CouponDisabled,
    ListPriceRemoved,
    ListPriceSet,
    PromotionEnded,
    TaxRateRemoved,
    TaxRateSet,
)
from tests.support.api_client import Customer

Headers = dict[str, str]
PREFIX = "/admin/api/pricing"
COUPON = {"code": "welcome10", "description": "10 % off your order", "percent_bp": 1000,
          "usage_limit": 1000}  # fmt: skip


@pytest.fixture
def stream(application: Application) -> Callable[[str], list[Event]]:
    def read(stream_id: str) -> list[Event]:
        with application.engine.connect() as conn:
            return [recorded.event for recorded in application.store.read_stream(conn, stream_id)]

    return read


def problem(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    return body


def test_setting_and_removing_a_tax_rate(
    client: FlaskClient, admin_headers: Headers, stream: Callable[[str], list[Event]]
) -> None:
    body = {"rate_bp": 1900, "prices_include_tax": True}
    response = client.put(f"{PREFIX}/tax-rates/DE", json=body, headers=admin_headers)

    assert response.status_code == 202, response.get_json()
    assert response.get_json()["id"] == "DE"
    listed = client.get(f"{PREFIX}/tax-rates", headers=admin_headers).get_json()
    assert listed == {"items": [{"country": "DE", "rate_bp": 1900, "prices_include_tax": True}]}

    assert client.delete(f"{PREFIX}/tax-rates/DE", headers=admin_headers).status_code == 202
    assert client.get(f"{PREFIX}/tax-rates", headers=admin_headers).get_json() == {"items": []}
    assert stream("tax_rate-DE") == [TaxRateSet("DE", 1900, True), TaxRateRemoved("DE")]
    again = client.delete(f"{PREFIX}/tax-rates/DE", headers=admin_headers)
    assert problem(again, 404)["type"] == "/problems/tax-rate-unknown"


def test_changes_are_recorded_with_the_admin_as_actor(
    client: FlaskClient, admin_headers: Headers, application: Application
) -> None:
    client.put(f"{PREFIX}/tax-rates/FR", json={"rate_bp": 2000, "prices_include_tax": True},
               headers=admin_headers)  # fmt: skip

    with application.engine.connect() as conn:
        actor = conn.execute(
            text("SELECT metadata ->> 'actor' FROM events WHERE stream_id = 'tax_rate-FR'")
        ).scalar_one()
    assert actor.startswith("admin")


def test_list_prices_are_set_listed_and_removed(
    client: FlaskClient, admin_headers: Headers, stream: Callable[[str], list[Event]]
) -> None:
    path = f"{PREFIX}/list-prices/USD/MUG-1"
    assert client.put(path, json={"amount": 1400}, headers=admin_headers).status_code == 202

    listed = client.get(f"{PREFIX}/list-prices", headers=admin_headers).get_json()
    assert listed == {"items": [{"sku": "MUG-1", "price": {"amount": 1400, "currency": "USD"}}]}
    assert client.delete(path, headers=admin_headers).status_code == 202
    assert stream("price_list-USD") == [
        ListPriceSet("USD", "MUG-1", Money(1400, "USD")),
        ListPriceRemoved("USD", "MUG-1"),
    ]


def test_a_promotion_is_created_listed_and_ended(
    client: FlaskClient, admin_headers: Headers, stream: Callable[[str], list[Event]]
) -> None:
    body = {
        "description": "Mugs 20 % off",
        "percent_bp": 2000,
        "skus": ["MUG-1"],
        "starts_at": "2026-01-01T00:00:00+00:00",
        "ends_at": "2036-01-01T00:00:00+00:00",
    }
    response = client.post(f"{PREFIX}/promotions", json=body, headers=admin_headers)
    assert response.status_code == 202, response.get_json()
    promotion_id = response.get_json()["id"]

    (listed,) = client.get(f"{PREFIX}/promotions", headers=admin_headers).get_json()["items"]
    assert listed == {
        "promotion_id": promotion_id, "description": "Mugs 20 % off", "percent_bp": 2000,
        "amount_off": None, "skus": ["MUG-1"], "starts_at": "2026-01-01T00:00:00+00:00",
        "ends_at": "2036-01-01T00:00:00+00:00", "ended": False,
    }  # fmt: skip
    ended = client.post(f"{PREFIX}/promotions/{promotion_id}/end", headers=admin_headers)
    assert ended.status_code == 202
    assert stream(f"promotion-{promotion_id}")[-1] == PromotionEnded(promotion_id)
    (listed,) = client.get(f"{PREFIX}/promotions", headers=admin_headers).get_json()["items"]
    assert listed["ended"] is True
    unknown = client.post(f"{PREFIX}/promotions/nope/end", headers=admin_headers)
    assert problem(unknown, 404)["type"] == "/problems/not-found"


def test_a_coupon_is_created_upper_case_listed_with_its_redemptions_and_disabled(
    client: FlaskClient, admin_headers: Headers, stream: Callable[[str], list[Event]]
) -> None:
    response = client.post(f"{PREFIX}/coupons", json=COUPON, headers=admin_headers)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["id"] == "WELCOME10"

    (listed,) = client.get(f"{PREFIX}/coupons", headers=admin_headers).get_json()["items"]
    assert (listed["code"], listed["redemptions"], listed["disabled"]) == ("WELCOME10", 0, False)
    again = client.post(f"{PREFIX}/coupons", json=COUPON | {"code": "Welcome10"},
                        headers=admin_headers)  # fmt: skip
    assert problem(again, 409)["type"] == "/problems/coupon-exists"
    disabled = client.post(f"{PREFIX}/coupons/welcome10/disable", headers=admin_headers)
    assert disabled.status_code == 202
    assert stream("coupon-WELCOME10") == [
        CouponCreated("WELCOME10", "10 % off your order", 1000, None, 1000, None, None, None),
        CouponDisabled("WELCOME10"),
    ]
    (listed,) = client.get(f"{PREFIX}/coupons", headers=admin_headers).get_json()["items"]
    assert listed["disabled"] is True


def test_bad_input_lists_every_field_error(client: FlaskClient, admin_headers: Headers) -> None:
    body = {"code": "no spaces!", "description": "", "percent_bp": 0, "usage_limit": 0,
            "amount_off": {"amount": -1, "currency": "eur"}, "ends_at": "tomorrow"}  # fmt: skip
    response = client.post(f"{PREFIX}/coupons", json=body, headers=admin_headers)

    errors = problem(response, 422)["errors"]
    assert set(errors) == {"code", "description", "percent_bp", "usage_limit", "amount_off",
                           "ends_at"}  # fmt: skip
    assert set(errors["amount_off"]) == {"amount", "currency"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"description": "Both", "percent_bp": 1000,
          "amount_off": {"amount": 100, "currency": "EUR"}}, "percent_bp"),
        ({"description": "Neither"}, "percent_bp"),
        ({"description": "Backwards", "percent_bp": 1000, "starts_at": "2030-01-02T00:00:00Z",
          "ends_at": "2030-01-01T00:00:00Z"}, "ends_at"),
        ({"description": "Naive", "percent_bp": 1000, "starts_at": "2030-01-02T00:00:00"},
         "starts_at"),
        ({"description": "Twice", "percent_bp": 1000, "skus": ["MUG-1", "MUG-1"]}, "skus"),
        ({"description": "Too much", "percent_bp": 10_001}, "percent_bp"),
    ],
)  # fmt: skip
def test_a_promotion_offers_exactly_one_discount_in_a_sound_window(
    client: FlaskClient, admin_headers: Headers, body: dict[str, Any], field: str
) -> None:
    response = client.post(f"{PREFIX}/promotions", json=body, headers=admin_headers)

    assert field in problem(response, 422)["errors"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("tax-rates/de", {"rate_bp": 1900, "prices_include_tax": True}),
        ("tax-rates/DE", {"rate_bp": 10_001, "prices_include_tax": "maybe"}),
        ("list-prices/usd/MUG-1", {"amount": 1400}),
        ("list-prices/USD/MUG-1", {"amount": "14.00"}),
    ],
)
def test_bad_rates_and_prices_are_refused_with_field_errors(
    client: FlaskClient, admin_headers: Headers, path: str, body: dict[str, Any]
) -> None:
    response = client.put(f"{PREFIX}/{path}", json=body, headers=admin_headers)

    assert problem(response, 422)["errors"]


def test_a_customer_cannot_use_the_pricing_admin(
    client: FlaskClient, register_customer: Callable[..., Customer]
) -> None:
    customer = register_customer()

    assert client.get(f"{PREFIX}/coupons", headers=customer.headers).status_code == 403
    response = client.post(f"{PREFIX}/coupons", json=COUPON, headers=customer.headers)
    assert problem(response, 403)
    assert client.get(f"{PREFIX}/coupons").status_code == 401
