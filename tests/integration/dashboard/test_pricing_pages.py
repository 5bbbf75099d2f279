"""The pricing pages: tax rates, promotions, coupons and list prices, each listed as the
pricing context has it, with forms that dispatch its commands as the admin. Setting and
creating dispatch at once; removing, ending and disabling ask for confirmation first.
Bad input comes back as field errors on the page and dispatches nothing; a command the
pricing context refuses shows its reason. An order priced by those rules shows its
discounts and taxes on its page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from config.bootstrap import Application
from dashboard.filters import money
from tests.integration.dashboard.support import csrf, settle, sign_in, text_of
from tests.support.api_client import Customer
from tests.support.shop import ADDRESS_DATA


def _events(application: Application, event_type: str) -> list[dict[str, Any]]:
    with application.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT data, metadata FROM events WHERE type = :type ORDER BY position"),
            {"type": event_type},
        ).all()
    return [{"data": row[0], "metadata": row[1]} for row in rows]


def _event_count(application: Application) -> int:
    with application.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())


def _post(admin: FlaskClient, path: str, **form: str) -> Any:
    return admin.post(f"/admin/pricing/{path}", data=form | {"csrf_token": csrf(admin)})


def _row(html: str, marker: str) -> str:
    return html.split(marker)[1].split("</tr>")[0]


def _minute(moment: datetime) -> str:
    """A time as a datetime-local input sends it."""
    return moment.strftime("%Y-%m-%dT%H:%M")


def _new_promotion_id(admin: FlaskClient) -> str:
    page = admin.get("/admin/pricing/promotions").get_data(as_text=True)
    found = re.search(r'name="promotion_id" value="([^"]+)"', page)
    assert found
    return found.group(1)


@pytest.mark.parametrize("path", ["taxes", "promotions", "coupons", "prices"])
def test_every_pricing_page_renders_and_is_in_the_navigation(admin: FlaskClient, path: str) -> None:
    response = admin.get(f"/admin/pricing/{path}")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'href="/admin/pricing" aria-current="page">Pricing<' in html
    assert f'href="/admin/pricing/{path}" aria-current="page"' in html
    assert admin.get("/admin/pricing").location.endswith("/admin/pricing/taxes")


def test_a_tax_rate_is_set_shown_and_removed_after_confirming(
    admin: FlaskClient, application: Application
) -> None:
    done = _post(admin, "taxes", country="de", rate="19", display="inclusive")

    assert done.status_code == 303
    (event,) = _events(application, "TaxRateSet")
    assert event["data"] == {"country": "DE", "rate_bp": 1900, "prices_include_tax": True}
    assert event["metadata"]["actor"] == "admin:bootstrap"
    html = admin.get(done.location).get_data(as_text=True)
    assert "DE is taxed at 19 % (inclusive prices)." in html
    row = _row(html, 'data-country="DE"')
    assert "data-rate>19 %<" in row and "data-display>inclusive<" in row

    _post(admin, "taxes", country="AT", rate="7.5", display="exclusive")
    (_, reduced) = _events(application, "TaxRateSet")
    assert reduced["data"]["rate_bp"] == 750

    asked = _post(admin, "taxes/DE/remove")
    assert 'data-confirm-step="remove_tax_rate"' in asked.get_data(as_text=True)
    assert _events(application, "TaxRateRemoved") == []
    removed = _post(admin, "taxes/DE/remove", confirmed="yes")

    assert removed.status_code == 303
    (event,) = _events(application, "TaxRateRemoved")
    assert event["data"] == {"country": "DE"}
    assert event["metadata"]["actor"] == "admin:bootstrap"
    html = admin.get(removed.location).get_data(as_text=True)
    assert 'data-country="DE"' not in html and 'data-country="AT"' in html


def test_promotions_are_listed_running_scheduled_or_ended(
    admin: FlaskClient, application: Application
) -> None:
    now = datetime.now(UTC)
    running_id = _new_promotion_id(admin)
    running = _post(
        admin, "promotions", promotion_id=running_id, description="Winter sale",
        kind="percent", percent="10", scope="order",
    )  # fmt: skip
    later_id = _new_promotion_id(admin)
    later = _post(
        admin, "promotions", promotion_id=later_id, description="Mugs next week",
        kind="amount", amount="2.50", currency="eur", scope="skus", skus="MUG-1, MUG-1 ,",
        starts_at=_minute(now + timedelta(days=7)), ends_at=_minute(now + timedelta(days=14)),
    )  # fmt: skip

    assert running.status_code == 303 and later.status_code == 303
    first, second = _events(application, "PromotionCreated")
    assert first["data"]["promotion_id"] == running_id
    assert (first["data"]["percent_bp"], first["data"]["amount_off"]) == (1000, None)
    assert first["data"]["skus"] == [] and first["data"]["ends_at"] is None
    assert first["metadata"]["actor"] == "admin:bootstrap"
    assert second["data"]["amount_off"] == {"amount": 250, "currency": "EUR"}
    assert second["data"]["skus"] == ["MUG-1"]
    assert datetime.fromisoformat(second["data"]["starts_at"]) > now
    html = admin.get("/admin/pricing/promotions").get_data(as_text=True)
    row = _row(html, f'data-promotion="{running_id}"')
    assert "data-promotion-status>running<" in row and "10 % off" in row
    assert "the order" in row and 'data-action="end_promotion"' in row
    row = _row(html, f'data-promotion="{later_id}"')
    assert "data-promotion-status>scheduled<" in row and "2.50 EUR off" in row and "MUG-1" in row

    asked = _post(admin, f"promotions/{running_id}/end", description="Winter sale")
    assert "End promotion Winter sale?" in asked.get_data(as_text=True)
    assert _events(application, "PromotionEnded") == []
    ended = _post(admin, f"promotions/{running_id}/end", confirmed="yes")

    assert ended.status_code == 303
    (event,) = _events(application, "PromotionEnded")
    assert event["data"] == {"promotion_id": running_id}
    assert event["metadata"]["actor"] == "admin:bootstrap"
    row = _row(admin.get(ended.location).get_data(as_text=True), f'data-promotion="{running_id}"')
    assert "data-promotion-status>ended<" in row and "data-action" not in row


def test_a_promotion_posted_twice_is_created_once(
    admin: FlaskClient, application: Application
) -> None:
    form = {"promotion_id": _new_promotion_id(admin), "description": "Once", "kind": "percent"}
    form |= {"percent": "5", "scope": "order"}

    first, again = _post(admin, "promotions", **form), _post(admin, "promotions", **form)

    assert first.status_code == 303
    assert again.status_code == 409
    assert "exists already" in again.get_data(as_text=True)
    assert len(_events(application, "PromotionCreated")) == 1


def test_a_coupon_is_created_listed_with_its_uses_and_disabled_after_confirming(
    admin: FlaskClient, application: Application
) -> None:
    done = _post(
        admin, "coupons", code="welcome10", description="Welcome", kind="amount",
        amount="5", currency="EUR", usage_limit="100", min_subtotal="20.00",
    )  # fmt: skip

    assert done.status_code == 303, text_of(done.get_data(as_text=True))
    (event,) = _events(application, "CouponCreated")
    assert event["data"]["code"] == "WELCOME10"
    assert event["data"]["amount_off"] == {"amount": 500, "currency": "EUR"}
    assert event["data"]["usage_limit"] == 100
    assert event["data"]["min_subtotal"] == {"amount": 2000, "currency": "EUR"}
    assert event["metadata"]["actor"] == "admin:bootstrap"
    row = _row(admin.get(done.location).get_data(as_text=True), 'data-coupon="WELCOME10"')
    assert "data-used>0 / 100<" in row and "data-validity>valid<" in row
    assert "5.00 EUR off" in row and "20.00 EUR" in row

    again = _post(
        admin, "coupons", code="WELCOME10", description="Again", kind="percent", percent="10",
        usage_limit="5",
    )  # fmt: skip
    assert again.status_code == 409
    assert "a coupon WELCOME10 exists already" in again.get_data(as_text=True)
    assert len(_events(application, "CouponCreated")) == 1

    asked = _post(admin, "coupons/WELCOME10/disable")
    assert 'data-confirm-step="disable_coupon"' in asked.get_data(as_text=True)
    assert _events(application, "CouponDisabled") == []
    disabled = _post(admin, "coupons/WELCOME10/disable", confirmed="yes")

    assert disabled.status_code == 303
    (event,) = _events(application, "CouponDisabled")
    assert event["data"] == {"code": "WELCOME10"}
    assert event["metadata"]["actor"] == "admin:bootstrap"
    row = _row(admin.get(disabled.location).get_data(as_text=True), 'data-coupon="WELCOME10"')
    assert "data-validity>disabled<" in row and "data-action" not in row


def test_a_list_price_is_set_and_removed_after_confirming(
    admin: FlaskClient, application: Application
) -> None:
    done = _post(admin, "prices", sku="MUG-1", currency="usd", amount="14")

    assert done.status_code == 303
    (event,) = _events(application, "ListPriceSet")
    assert event["data"]["price"] == {"amount": 1400, "currency": "USD"}
    assert event["data"]["sku"] == "MUG-1" and event["data"]["currency"] == "USD"
    assert event["metadata"]["actor"] == "admin:bootstrap"
    html = admin.get(done.location).get_data(as_text=True)
    assert "data-price>14.00 USD<" in _row(html, 'data-price-of="USD/MUG-1"')

    asked = _post(admin, "prices/USD/MUG-1/remove")
    assert 'data-confirm-step="remove_list_price"' in asked.get_data(as_text=True)
    removed = _post(admin, "prices/USD/MUG-1/remove", confirmed="yes")

    assert removed.status_code == 303
    (event,) = _events(application, "ListPriceRemoved")
    assert event["data"] == {"currency": "USD", "sku": "MUG-1"}
    assert event["metadata"]["actor"] == "admin:bootstrap"
    assert 'data-price-of="USD/MUG-1"' not in admin.get(removed.location).get_data(as_text=True)


GOOD = {
    "taxes": {"country": "DE", "rate": "19", "display": "inclusive"},
    "prices": {"sku": "MUG-1", "currency": "EUR", "amount": "3"},
    "promotions": {"description": "x", "kind": "percent", "percent": "5", "scope": "order"},
    "coupons": {"code": "SAVE", "description": "x", "kind": "percent", "percent": "5",
                "usage_limit": "1"},
}  # fmt: skip
LATER, EARLIER = "2030-01-02T00:00", "2030-01-01T00:00"


@pytest.mark.parametrize(
    ("path", "changed", "field", "message"),
    [
        ("taxes", {"country": "Germany"}, "country", "ISO 3166"),
        ("taxes", {"rate": "nineteen"}, "rate", "such as 19"),
        ("taxes", {"rate": "101"}, "rate", "less than or equal to 100"),
        ("taxes", {"rate": "19.123"}, "rate", "two decimals"),
        ("taxes", {"display": "both"}, "display", "inclusive or exclusive"),
        ("prices", {"amount": "1.234"}, "amount", "At most 2 decimals"),
        ("prices", {"currency": "JPY", "amount": "1.5"}, "amount", "At most 0 decimals"),
        ("prices", {"sku": ""}, "sku", "Missing data"),
        ("promotions", {"percent": ""}, "percent", "Enter the percentage off."),
        ("promotions", {"percent": "150"}, "percent", "100"),
        ("promotions", {"kind": "amount", "amount": "2"}, "currency", "Say which currency"),
        ("promotions", {"scope": "skus"}, "skus", "List the SKUs"),
        ("promotions", {"starts_at": LATER, "ends_at": EARLIER}, "ends_at", "after the start"),
        ("promotions", {"starts_at": "soon"}, "starts_at", "Enter a time"),
        ("coupons", {"code": "X"}, "code", "3 to 32"),
        ("coupons", {"usage_limit": "0"}, "usage_limit", "greater than or equal to 1"),
        ("coupons", {"min_subtotal": "10"}, "currency", "currency the minimum"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_dispatches_nothing(
    admin: FlaskClient,
    application: Application,
    path: str,
    changed: dict[str, str],
    field: str,
    message: str,
) -> None:
    form = GOOD[path] | changed
    if path == "promotions":
        form = form | {"promotion_id": _new_promotion_id(admin)}
    before = _event_count(application)

    response = _post(admin, path, **form)

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    errors = re.findall(rf'data-field="{field}">([^<]*)<', html)
    assert errors and message in " ".join(errors), errors
    assert _event_count(application) == before


def test_removing_what_is_not_there_shows_the_pricing_contexts_reason(
    admin: FlaskClient, application: Application
) -> None:
    before = _event_count(application)

    response = _post(admin, "coupons/NOSUCH/disable", confirmed="yes")

    assert response.status_code == 404
    assert "no coupon has the code NOSUCH" in response.get_data(as_text=True)
    assert _event_count(application) == before


def test_pricing_forms_need_the_sessions_csrf_token(
    admin: FlaskClient, application: Application
) -> None:
    before = _event_count(application)

    forged = admin.post(
        "/admin/pricing/taxes",
        data={"country": "DE", "rate": "19", "display": "inclusive", "csrf_token": "forged"},
    )

    assert forged.status_code == 400
    assert _event_count(application) == before


def test_a_viewer_sees_the_pricing_rules_but_no_forms_and_cannot_post(
    admin: FlaskClient, application: Application
) -> None:
    _post(admin, "taxes", country="FR", rate="20", display="inclusive")
    _post(admin, "coupons", code="SPRING", description="s", kind="percent", percent="5",
          usage_limit="9")  # fmt: skip
    admin.post("/admin/logout", data={"csrf_token": csrf(admin)})
    _, token = application.admins.create("vic", "viewer", "cli:test")
    assert sign_in(admin, token).status_code == 303  # the same browser, now as a viewer
    before = _event_count(application)

    taxes = admin.get("/admin/pricing/taxes").get_data(as_text=True)
    coupons = admin.get("/admin/pricing/coupons").get_data(as_text=True)
    refused = _post(admin, "taxes/FR/remove", confirmed="yes")

    assert 'data-country="FR"' in taxes and 'data-coupon="SPRING"' in coupons
    for html in (taxes, coupons):
        assert html.count('method="post"') == 1, "only signing out"
    assert refused.status_code == 403
    assert _event_count(application) == before


def test_an_order_priced_by_the_rules_set_here_shows_its_discount_and_tax(
    admin: FlaskClient, application: Application, catalog: None, ada: Customer
) -> None:
    _post(admin, "taxes", country="GB", rate="20", display="inclusive")
    _post(admin, "coupons", code="TENOFF", description="Ten off", kind="percent", percent="10",
          usage_limit="5")  # fmt: skip
    body = {
        "lines": [{"sku": "MUG-1", "quantity": 2}],
        "shipping_address": ADDRESS_DATA,
        "payment": {"token": "pm_card_visa"},
        "coupon_code": "tenoff",
    }
    placed = admin.post("/api/orders", json=body, headers=ada.headers)
    assert placed.status_code == 202, placed.get_json()
    order_id = placed.get_json()["order_id"]
    settle(application)

    page = admin.get(f"/admin/orders/{order_id}").get_data(as_text=True)
    coupons = admin.get("/admin/pricing/coupons").get_data(as_text=True)

    (event,) = [e for e in _events(application, "OrderPlaced") if e["data"]["order_id"] == order_id]
    discount, tax = event["data"]["discount_total"], event["data"]["tax_total"]
    assert discount["amount"] > 0 and tax["amount"] > 0
    assert f"-{money(discount['amount'], 'EUR')}" in _row(page, 'data-discount="coupon:TENOFF"')
    assert money(tax["amount"], "EUR") in _row(page, 'data-tax="GB"')
    assert "Tax GB 20 %" in _row(page, 'data-tax="GB"')
    assert "data-used>1 / 5<" in _row(coupons, 'data-coupon="TENOFF"')
