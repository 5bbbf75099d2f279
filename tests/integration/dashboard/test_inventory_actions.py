"""Restocking and repricing from the dashboard dispatch the admin API's commands;
bad input comes back as field errors on the page and dispatches nothing."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from config.bootstrap import Application
from tests.integration.dashboard.support import csrf


def _events(application: Application, event_type: str) -> list[dict[str, Any]]:
    with application.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT data, metadata FROM events WHERE type = :type ORDER BY position"),
            {"type": event_type},
        ).all()
    return [{"data": row[0], "metadata": row[1]} for row in rows]


def _row(html: str, sku: str) -> str:
    return html.split(f'data-sku="{sku}"')[1].split("</tr>")[0]


def test_restocking_dispatches_restock_product_and_shows_the_new_stock(
    admin: FlaskClient, application: Application, catalog: None
) -> None:
    response = admin.post(
        "/admin/inventory/MUG-1/restock", data={"quantity": "25", "csrf_token": csrf(admin)}
    )

    assert response.status_code == 303
    (event,) = _events(application, "StockReplenished")
    assert event["data"]["sku"] == "MUG-1"
    assert event["data"]["quantity"] == 25
    assert event["metadata"]["actor"] == "admin:bootstrap"
    html = admin.get("/admin/inventory").get_data(as_text=True)
    assert "Restocked MUG-1 by 25." in html
    assert "data-on-hand>125<" in _row(html, "MUG-1")


def test_changing_a_price_dispatches_change_price(
    admin: FlaskClient, application: Application, catalog: None
) -> None:
    response = admin.post(
        "/admin/inventory/TEE-1/price",
        data={"amount": "21.5", "currency": "EUR", "csrf_token": csrf(admin)},
    )

    assert response.status_code == 303
    (event,) = _events(application, "PriceChanged")
    assert event["data"]["sku"] == "TEE-1"
    assert event["data"]["price"] == {"amount": 2150, "currency": "EUR"}
    html = admin.get("/admin/inventory").get_data(as_text=True)
    assert "data-price>21.50 EUR<" in _row(html, "TEE-1")


@pytest.mark.parametrize(
    ("action", "form", "field", "message"),
    [
        ("restock", {"quantity": "lots"}, "quantity", "Enter a whole number."),
        ("restock", {"quantity": "0"}, "quantity", "greater than or equal to 1"),
        ("restock", {}, "quantity", "Missing data for required field."),
        ("price", {"amount": "12.345", "currency": "EUR"}, "amount", "At most two decimals."),
        ("price", {"amount": "-1", "currency": "EUR"}, "amount", "greater than or equal to 0"),
        ("price", {"amount": "twelve", "currency": "EUR"}, "amount", "Enter an amount"),
        ("price", {"amount": "12", "currency": "eu"}, "currency", "ISO 4217"),
    ],
)
def test_bad_input_is_shown_next_to_the_field_and_dispatches_nothing(
    admin: FlaskClient,
    application: Application,
    catalog: None,
    action: str,
    form: dict[str, str],
    field: str,
    message: str,
) -> None:
    with application.engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM events")).scalar_one()

    response = admin.post(
        f"/admin/inventory/MUG-1/{action}", data=form | {"csrf_token": csrf(admin)}
    )

    assert response.status_code == 422
    row = _row(response.get_data(as_text=True), "MUG-1")
    form_html = row.split(f'data-form="{action}"')[1].split("</form>")[0]
    assert f'data-field="{field}"' in form_html
    assert message in form_html
    for value in form.values():
        assert f'value="{value}"' in form_html, "what was typed is kept"
    with application.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == before


def test_a_refused_command_shows_the_domains_reason(
    admin: FlaskClient, application: Application, catalog: None
) -> None:
    response = admin.post(
        "/admin/inventory/MUG-1/price",
        data={"amount": "10", "currency": "GBP", "csrf_token": csrf(admin)},
    )

    assert response.status_code == 409
    form_html = _row(response.get_data(as_text=True), "MUG-1").split('data-form="price"')[1]
    assert 'data-field="_"' in form_html
    assert "EUR" in form_html.split("</form>")[0]
    assert _events(application, "PriceChanged") == []


def test_restocking_an_unknown_product_is_a_404(admin: FlaskClient, catalog: None) -> None:
    response = admin.post(
        "/admin/inventory/NOPE-1/restock", data={"quantity": "1", "csrf_token": csrf(admin)}
    )

    assert response.status_code == 404
    assert "NOPE-1: " in response.get_data(as_text=True)
