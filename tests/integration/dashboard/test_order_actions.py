"""Shipping, cancelling and refunding from an order's page: each form is checked, then
confirmed on a page of its own, then dispatches the admin API's command (ShipOrder,
CancelOrder by the admin, RefundPayment) as the admin; the page offers only what the
order's status allows and shows a refusal with the domain's reason."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from config.bootstrap import Application
from tests.integration.dashboard.support import (
    actions_of,
    csrf,
    event_count,
    events_of,
    place,
    settle,
    text_of,
)
from tests.support.api_client import Customer
from tests.support.payments import AUTHENTICATION_REQUIRED


def _post(admin: FlaskClient, order_id: str, action: str, **form: str) -> Any:
    return admin.post(f"/admin/orders/{order_id}/{action}", data=form | {"csrf_token": csrf(admin)})


@pytest.fixture
def confirmed(admin: FlaskClient, application: Application, catalog: None, ada: Customer) -> str:
    order = place(admin, ada, {"MUG-1": 2})
    settle(application)
    return order.order_id


def test_shipping_asks_for_confirmation_then_dispatches_ship_order_as_the_admin(
    admin: FlaskClient, application: Application, confirmed: str
) -> None:
    page = admin.get(f"/admin/orders/{confirmed}").get_data(as_text=True)
    assert actions_of(page) == ["ship", "cancel", "refund", "ship_lines"]
    before = event_count(application)

    asked = _post(admin, confirmed, "ship", tracking_number=" 1Z999AA1 ")

    assert asked.status_code == 200
    html = asked.get_data(as_text=True)
    assert 'data-confirm-step="ship"' in html
    assert "1Z999AA1" in text_of(html) and "29.99 EUR" in html and "confirmed" in html
    assert 'name="tracking_number" value="1Z999AA1"' in html
    assert 'name="confirmed" value="yes"' in html
    assert event_count(application) == before, "nothing is dispatched before confirming"

    done = _post(admin, confirmed, "ship", tracking_number="1Z999AA1", confirmed="yes")

    assert done.status_code == 303
    assert re.search(rf"/admin/orders/{confirmed}\?consistency_token=\d+\.\d+\.\d+$", done.location)
    (shipped,) = events_of(application, confirmed, "OrderShipped")
    assert shipped["data"]["tracking_number"] == "1Z999AA1"
    assert shipped["metadata"]["actor"] == "admin:bootstrap"
    settle(application)
    page = admin.get(done.location).get_data(as_text=True)
    assert f"Order {confirmed[:8]} shipped with tracking number 1Z999AA1." in page
    assert "data-status>shipped<" in page
    assert actions_of(page) == ["refund", "request_return"]


def test_cancelling_a_pending_order_is_recorded_as_cancelled_by_the_admin(
    admin: FlaskClient, application: Application, catalog: None, ada: Customer
) -> None:
    waiting = place(admin, ada, {"MUG-1": 1}, token=AUTHENTICATION_REQUIRED)
    settle(application)
    page = admin.get(f"/admin/orders/{waiting.order_id}").get_data(as_text=True)
    assert "data-status>pending<" in page
    assert actions_of(page) == ["cancel"]

    asked = _post(admin, waiting.order_id, "cancel", reason="duplicate order")
    assert 'data-confirm-step="cancel"' in asked.get_data(as_text=True)
    done = _post(admin, waiting.order_id, "cancel", reason="duplicate order", confirmed="yes")

    assert done.status_code == 303
    (cancelled,) = events_of(application, waiting.order_id, "OrderCancelled")
    assert cancelled["data"]["cancelled_by"] == "admin"
    assert cancelled["data"]["reason"] == "duplicate order"
    assert cancelled["metadata"]["actor"] == "admin:bootstrap"
    settle(application)
    page = admin.get(done.location).get_data(as_text=True)
    assert "data-status>cancelled<" in page
    assert "duplicate order (by admin)" in page
    assert actions_of(page) == []
    assert "data-no-actions" in page


def test_refunding_a_shipped_order_leaves_it_shipped_but_reading_refunded(
    admin: FlaskClient, application: Application, confirmed: str
) -> None:
    _post(admin, confirmed, "ship", tracking_number="T-1", confirmed="yes")
    settle(application)

    asked = _post(admin, confirmed, "refund", reason="sent back")
    assert "the order stays shipped" in asked.get_data(as_text=True)
    done = _post(admin, confirmed, "refund", reason="sent back", confirmed="yes")

    assert done.status_code == 303
    (refund,) = events_of(application, confirmed, "RefundRequested")
    assert (refund["data"]["reason"], refund["metadata"]["actor"]) == (
        "sent back",
        "admin:bootstrap",
    )
    settle(application)  # the payments worker refunds at Stripe
    page = admin.get(done.location).get_data(as_text=True)
    assert f"Refund of order {confirmed[:8]} asked for" in page
    assert "data-status>refunded<" in page
    assert "data-payment>refunded<" in page
    assert 'payment refunded → <span class="status refunded">refunded</span>' in page
    assert actions_of(page) == []
    listed = admin.get("/admin/orders?status=refunded").get_data(as_text=True)
    assert f'data-order-id="{confirmed}"' in listed


def test_refunding_before_shipping_says_it_cancels_the_order_and_does(
    admin: FlaskClient, application: Application, confirmed: str
) -> None:
    asked = _post(admin, confirmed, "refund", reason="no stock after all")
    assert "the refund cancels it" in asked.get_data(as_text=True)

    _post(admin, confirmed, "refund", reason="no stock after all", confirmed="yes")
    settle(application)

    page = admin.get(f"/admin/orders/{confirmed}").get_data(as_text=True)
    assert "data-status>cancelled<" in page
    assert "data-payment>refunded<" in page
    assert "payment refunded (by system)" in page
    assert actions_of(page) == []


@pytest.mark.parametrize(
    ("action", "form", "field", "message"),
    [
        ("ship", {}, "tracking_number", "Missing data for required field."),
        ("ship", {"tracking_number": "T" * 65}, "tracking_number", "between 1 and 64"),
        ("cancel", {"reason": "   "}, "reason", "Missing data for required field."),
        ("refund", {"reason": "x" * 501}, "reason", "between 1 and 500"),
    ],
)
def test_bad_input_is_shown_by_its_form_and_dispatches_nothing(
    admin: FlaskClient,
    application: Application,
    confirmed: str,
    action: str,
    form: dict[str, str],
    field: str,
    message: str,
) -> None:
    before = event_count(application)

    response = _post(admin, confirmed, action, confirmed="yes", **form)

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    form_html = html.split(f'data-action="{action}"')[1].split("</form>")[0]
    assert f'data-field="{field}"' in form_html
    assert message in form_html
    assert event_count(application) == before


def test_a_refused_command_shows_the_domains_reason_and_changes_nothing(
    admin: FlaskClient, application: Application, catalog: None, ada: Customer
) -> None:
    waiting = place(admin, ada, {"MUG-1": 1}, token=AUTHENTICATION_REQUIRED)
    settle(application)
    before = event_count(application)

    shipped = _post(admin, waiting.order_id, "ship", tracking_number="T-1", confirmed="yes")
    refunded = _post(admin, waiting.order_id, "refund", reason="why not", confirmed="yes")

    assert shipped.status_code == 409
    assert "only confirmed orders can be shipped" in shipped.get_data(as_text=True)
    assert refunded.status_code == 409
    assert "only a succeeded payment can be refunded" in refunded.get_data(as_text=True)
    assert event_count(application) == before


def test_actions_on_an_unknown_order_are_404(admin: FlaskClient) -> None:
    order_id = "6f1d2f4e-7c1a-4b5e-9a57-2f0d8c1e9b31"

    response = _post(admin, order_id, "cancel", reason="gone", confirmed="yes")

    assert response.status_code == 404
    assert "There is no such order." in response.get_data(as_text=True)


def test_actions_need_the_sessions_csrf_token_and_a_sign_in(
    admin: FlaskClient, client: FlaskClient, application: Application, confirmed: str
) -> None:
    before = event_count(application)

    forged = admin.post(
        f"/admin/orders/{confirmed}/cancel",
        data={"reason": "x", "confirmed": "yes", "csrf_token": "forged"},
    )
    admin.post("/admin/logout", data={"csrf_token": csrf(admin)})
    signed_out = _post(admin, confirmed, "cancel", reason="x", confirmed="yes")

    assert forged.status_code == 400
    assert signed_out.status_code == 302
    assert "/admin/login" in signed_out.location
    assert event_count(application) == before


def test_forgetting_the_customer_from_an_order_page_erases_them_there_and_then(
    admin: FlaskClient, application: Application, confirmed: str, ada: Customer
) -> None:
    page = admin.get(f"/admin/orders/{confirmed}").get_data(as_text=True)
    assert "Ada Lovelace" in page and "data-forget" in page
    before = event_count(application)
    form = {"order_id": confirmed, "csrf_token": csrf(admin)}

    asked = admin.post(f"/admin/customers/{ada.customer_id}/forget", data=form)

    assert asked.status_code == 200
    html = asked.get_data(as_text=True)
    assert 'data-confirm-step="forget"' in html and "ada@example.com" in html
    assert event_count(application) == before, "nothing is dispatched before confirming"

    done = admin.post(
        f"/admin/customers/{ada.customer_id}/forget", data=form | {"confirmed": "yes"}
    )

    assert done.status_code == 303 and done.location.endswith(f"/admin/orders/{confirmed}")
    with application.engine.connect() as conn:
        actor = conn.execute(
            text("SELECT metadata ->> 'actor' FROM events WHERE type = 'CustomerForgotten'")
        ).scalar_one()
    assert actor == "admin:bootstrap"
    page = admin.get(done.location).get_data(as_text=True)
    assert "Ada Lovelace" not in page and "ada@example.com" not in page
    assert "data-erased" in page and "(erased)" in page  # its address, at once
    assert "data-status>confirmed<" in page
    audit = admin.get("/admin/audit").get_data(as_text=True)
    assert "CustomerForgotten" in audit and f"customer {ada.customer_id}" in audit


def test_forgetting_needs_the_order_page_it_came_from(admin: FlaskClient, ada: Customer) -> None:
    refused = admin.post(
        f"/admin/customers/{ada.customer_id}/forget",
        data={"order_id": "nonsense", "csrf_token": csrf(admin)},
    )
    assert refused.status_code == 422
