"""Shipping some lines, recording a return, receiving and inspecting it from an order's
page: each form is checked against what the order's document says is left to ship or to
take back, shipping and inspecting are confirmed on a page of their own, and each
dispatches its command (ShipOrderLines, RequestReturn, ReceiveReturn, InspectReturn) as
the admin; what the order's state does not allow is refused and dispatches nothing."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient

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


def _form(html: str, action: str) -> str:
    return html.split(f'data-action="{action}"')[1].split("</form>")[0]


def _return_row(html: str, return_id: str) -> str:
    """The return's row, its forms' tables included (up to the refunds)."""
    return html.split(f'data-return="{return_id}"')[1].split("data-refunds")[0]


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found, name
    return found.group(1)


def _post(admin: FlaskClient, path: str, **form: str) -> Any:
    return admin.post(f"/admin/orders/{path}", data=form | {"csrf_token": csrf(admin)})


@pytest.fixture
def confirmed(admin: FlaskClient, application: Application, catalog: None, ada: Customer) -> str:
    order = place(admin, ada, {"MUG-1": 2, "TEE-1": 1})
    settle(application)
    return order.order_id


def _ship_some(admin: FlaskClient, order_id: str, **units: str) -> Any:
    page = admin.get(f"/admin/orders/{order_id}").get_data(as_text=True)
    shipment_id = _hidden(_form(page, "ship_lines"), "shipment_id")
    form = {f"ship-{sku}": n for sku, n in units.items()}
    return _post(
        admin, f"{order_id}/shipments", shipment_id=shipment_id, tracking_number="T-1",
        confirmed="yes", **form,
    )  # fmt: skip


def test_shipping_some_lines_asks_for_confirmation_then_records_the_shipment_as_the_admin(
    admin: FlaskClient, application: Application, confirmed: str
) -> None:
    page = admin.get(f"/admin/orders/{confirmed}").get_data(as_text=True)
    assert actions_of(page) == ["ship", "cancel", "refund", "ship_lines"]
    form = _form(page, "ship_lines")
    assert 'name="ship-MUG-1"' in form and 'name="ship-TEE-1"' in form
    shipment_id = _hidden(form, "shipment_id")
    before = event_count(application)
    typed = {"shipment_id": shipment_id, "ship-MUG-1": "1", "tracking_number": "1Z-PART"}

    asked = _post(admin, f"{confirmed}/shipments", **typed)

    assert asked.status_code == 200
    html = asked.get_data(as_text=True)
    assert 'data-confirm-step="ship_lines"' in html
    assert "1 x MUG-1" in text_of(html) and "1Z-PART" in html
    assert f'name="shipment_id" value="{shipment_id}"' in html
    assert event_count(application) == before, "nothing is dispatched before confirming"

    done = _post(admin, f"{confirmed}/shipments", **typed, confirmed="yes")
    again = _post(admin, f"{confirmed}/shipments", **typed, confirmed="yes")

    assert done.status_code == 303 and again.status_code == 303
    (dispatched,) = events_of(application, confirmed, "ShipmentDispatched")
    assert dispatched["data"]["shipment_id"] == shipment_id
    assert dispatched["data"]["lines"] == [{"sku": "MUG-1", "quantity": 1}]
    assert dispatched["data"]["tracking_number"] == "1Z-PART"
    assert dispatched["metadata"]["actor"] == "admin:bootstrap"
    assert events_of(application, confirmed, "OrderShipped") == []
    settle(application)
    page = admin.get(done.location).get_data(as_text=True)
    assert f"Shipment of order {confirmed[:8]} recorded: 1 x MUG-1." in page
    assert f'data-shipment="{shipment_id}"' in page and "data-tracking>1Z-PART<" in page
    assert actions_of(page) == ["ship", "ship_lines", "request_return"]
    rest = _form(page, "ship_lines")
    assert re.search(r'data-sku="MUG-1"><td><code>MUG-1</code></td><td class="num">1<', rest)
    assert 'data-sku="TEE-1"' in rest
    assert 'name="return-MUG-1"' in _form(page, "request_return")
    assert 'name="return-TEE-1"' not in _form(page, "request_return")


def test_shipping_the_last_units_ships_the_order(
    admin: FlaskClient, application: Application, confirmed: str
) -> None:
    _ship_some(admin, confirmed, **{"MUG-1": "2"})
    settle(application)

    _ship_some(admin, confirmed, **{"TEE-1": "1"})
    settle(application)

    assert len(events_of(application, confirmed, "ShipmentDispatched")) == 2
    (shipped,) = events_of(application, confirmed, "OrderShipped")
    assert shipped["metadata"]["actor"] == "admin:bootstrap"
    page = admin.get(f"/admin/orders/{confirmed}").get_data(as_text=True)
    assert "data-status>shipped<" in page
    assert "ship_lines" not in actions_of(page)


def test_a_return_is_recorded_received_and_inspected_and_its_refund_shown(
    admin: FlaskClient, application: Application, confirmed: str
) -> None:
    _post(admin, f"{confirmed}/ship", tracking_number="T-ALL", confirmed="yes")
    settle(application)
    page = admin.get(f"/admin/orders/{confirmed}").get_data(as_text=True)
    assert actions_of(page) == ["refund", "request_return"]
    return_id = _hidden(_form(page, "request_return"), "return_id")

    requested = _post(
        admin, f"{confirmed}/returns", return_id=return_id, reason="too small",
        **{"return-MUG-1": "2"},
    )  # fmt: skip

    assert requested.status_code == 303
    (event,) = events_of(application, confirmed, "ReturnRequested")
    assert event["data"]["return_id"] == return_id and event["data"]["reason"] == "too small"
    assert event["data"]["lines"] == [{"sku": "MUG-1", "quantity": 2}]
    assert event["metadata"]["actor"] == "admin:bootstrap"
    settle(application)
    page = admin.get(requested.location).get_data(as_text=True)
    row = _return_row(page, return_id)
    assert "data-return-status>requested<" in row and 'data-action="receive"' in row

    received = _post(admin, f"{confirmed}/returns/{return_id}/receive")

    assert received.status_code == 303
    (event,) = events_of(application, confirmed, "ReturnReceived")
    assert event["metadata"]["actor"] == "admin:bootstrap"
    settle(application)
    page = admin.get(received.location).get_data(as_text=True)
    row = _return_row(page, return_id)
    assert "data-return-status>received<" in row and 'name="accept-MUG-1"' in row

    path = f"{confirmed}/returns/{return_id}/inspect"
    asked = _post(admin, path, note="one chipped", **{"accept-MUG-1": "1"})
    assert 'data-confirm-step="inspect"' in asked.get_data(as_text=True)
    assert events_of(application, confirmed, "ReturnInspected") == []
    inspected = _post(admin, path, note="one chipped", confirmed="yes", **{"accept-MUG-1": "1"})

    assert inspected.status_code == 303
    (event,) = events_of(application, confirmed, "ReturnInspected")
    assert event["data"]["accepted"] == [{"sku": "MUG-1", "quantity": 1}]
    assert event["data"]["rejected"] == [{"sku": "MUG-1", "quantity": 1}]
    assert event["data"]["refund"] == {"amount": 1250, "currency": "EUR"}
    assert event["metadata"]["actor"] == "admin:bootstrap"
    settle(application)  # the saga refunds the accepted unit; the payments worker pays it
    page = admin.get(inspected.location).get_data(as_text=True)
    row = _return_row(page, return_id)
    assert "data-return-status>inspected<" in row
    assert "data-refund>12.50 EUR" in row and "one chipped" in row
    refunds = page.split("data-refunds")[1].split("</table>")[0]
    assert "data-amount>12.50 EUR<" in refunds
    assert "data-action" not in row, "an inspected return is done"
    assert actions_of(page) == ["refund", "request_return"]  # the T-shirt may still come back
    rest = _post(admin, f"{confirmed}/refund", reason="goodwill")
    assert "What is left of the payment, 37.48 EUR, goes back" in rest.get_data(as_text=True)


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"ship-MUG-1": "3", "tracking_number": "T-1"}, "ship-MUG-1", "Enter 0 to 2."),
        ({"ship-MUG-1": "lots", "tracking_number": "T-1"}, "ship-MUG-1", "Enter a whole number."),
        ({"tracking_number": "T-1"}, "_", "Enter how many units of at least one product."),
        ({"ship-TEE-1": "1"}, "tracking_number", "Missing data for required field."),
        ({"ship-TEE-1": "1", "tracking_number": "T" * 65}, "tracking_number", "between 1 and 64"),
    ],
)
def test_bad_shipment_input_is_shown_by_its_form_and_dispatches_nothing(
    admin: FlaskClient,
    application: Application,
    confirmed: str,
    form: dict[str, str],
    field: str,
    message: str,
) -> None:
    before = event_count(application)
    shipment_id = str(uuid.uuid4())

    response = _post(
        admin, f"{confirmed}/shipments", shipment_id=shipment_id, confirmed="yes", **form
    )

    assert response.status_code == 422
    html = _form(response.get_data(as_text=True), "ship_lines")
    assert f'data-field="{field}"' in html
    assert message in html
    assert f'value="{shipment_id}"' in html, "the same shipment when posted again"
    assert event_count(application) == before


def test_a_return_needs_shipped_units_and_a_reason(
    admin: FlaskClient, application: Application, confirmed: str
) -> None:
    before = event_count(application)
    return_id = str(uuid.uuid4())

    unshipped = _post(
        admin, f"{confirmed}/returns", return_id=return_id, reason="x", **{"return-MUG-1": "1"}
    )

    assert unshipped.status_code == 409
    assert "Not possible now: the order is confirmed." in unshipped.get_data(as_text=True)
    _post(admin, f"{confirmed}/ship", tracking_number="T-ALL", confirmed="yes")
    settle(application)
    before = event_count(application)

    blank = _post(
        admin, f"{confirmed}/returns", return_id=return_id, reason=" ", **{"return-MUG-1": "1"}
    )
    too_many = _post(
        admin, f"{confirmed}/returns", return_id=return_id, reason="x", **{"return-TEE-1": "2"}
    )

    assert blank.status_code == 422 and too_many.status_code == 422
    assert 'data-field="reason"' in _form(blank.get_data(as_text=True), "request_return")
    assert "Enter 0 to 1." in _form(too_many.get_data(as_text=True), "request_return")
    assert event_count(application) == before


def test_what_the_orders_state_does_not_allow_is_refused_and_dispatches_nothing(
    admin: FlaskClient, application: Application, catalog: None, ada: Customer, confirmed: str
) -> None:
    waiting = place(admin, ada, {"MUG-1": 1}, token=AUTHENTICATION_REQUIRED)
    settle(application)
    before = event_count(application)
    nowhere = str(uuid.uuid4())

    pending = _post(
        admin, f"{waiting.order_id}/shipments", shipment_id=nowhere, tracking_number="T-1",
        confirmed="yes", **{"ship-MUG-1": "1"},
    )  # fmt: skip
    no_return = _post(admin, f"{confirmed}/returns/{nowhere}/receive")
    no_order = _post(admin, f"{nowhere}/returns/{nowhere}/inspect", confirmed="yes")

    assert pending.status_code == 409
    html = pending.get_data(as_text=True)
    assert "Not possible now: the order is pending." in html
    assert "ship_lines" not in actions_of(html)
    assert no_return.status_code == 404
    assert "The order has no such return." in no_return.get_data(as_text=True)
    assert no_order.status_code == 404
    assert event_count(application) == before


def test_a_return_cannot_be_inspected_before_it_is_received(
    admin: FlaskClient, application: Application, confirmed: str
) -> None:
    _post(admin, f"{confirmed}/ship", tracking_number="T-ALL", confirmed="yes")
    settle(application)
    return_id = str(uuid.uuid4())
    _post(admin, f"{confirmed}/returns", return_id=return_id, reason="x", **{"return-TEE-1": "1"})
    settle(application)
    before = event_count(application)

    early = _post(
        admin, f"{confirmed}/returns/{return_id}/inspect", confirmed="yes", **{"accept-TEE-1": "1"}
    )

    assert early.status_code == 409
    html = early.get_data(as_text=True)
    assert "the return requested" in html
    row = _return_row(html, return_id)
    assert 'data-action="receive"' in row
    assert event_count(application) == before
