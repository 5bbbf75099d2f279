"""Inventory: stock per product, and the restock and price actions.

The actions dispatch the same commands as the admin API (RestockProduct,
ChangePrice) through the command bus; the form is checked here first, and a
command the domain refuses is shown on the page with its message.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import marshmallow as ma
from flask import Blueprint, Response, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from marshmallow import validate

from dashboard.auth import acting_admin
from dashboard.common import field_errors, freshness, page
from dashboard.filters import money
from dashboard.services import Services
from inventory.commands import ChangePrice, RestockProduct
from kernel.http import command_metadata
from kernel.messages import Command
from kernel.money import Money
from kernel.results import Failure
from projections.queries import StockLevels

MAX_QUANTITY = 10**6
MAX_PRICE = Decimal(10**7)  # major units: 10**9 minor units, as the admin API allows
STATUS_BY_CODE = {"not_found": 404, "invalid": 422}


class RestockForm(ma.Schema):
    quantity = ma.fields.Integer(
        required=True,
        validate=validate.Range(min=1, max=MAX_QUANTITY),
        error_messages={"invalid": "Enter a whole number."},
    )


class PriceForm(ma.Schema):
    amount = ma.fields.Decimal(
        required=True,
        validate=validate.Range(min=0, max=MAX_PRICE, max_inclusive=False),
        error_messages={"invalid": "Enter an amount such as 12.50."},
    )
    currency = ma.fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z]{3}$", error="Use an ISO 4217 code such as EUR."),
    )

    @ma.validates("amount")
    def in_cents(self, value: Decimal, **_: object) -> None:
        if value != value.quantize(Decimal("0.01")):
            raise ma.ValidationError("At most two decimals.")


def blueprint(services: Services) -> Blueprint:
    """The inventory page over the catalog read model of `services`, and its
    actions dispatched through `services.bus`."""
    pages = Blueprint("inventory", __name__)
    side = services.read_side

    def dispatch(
        command: Command, sku: str, form: str, values: dict[str, Any], done: str
    ) -> ResponseReturnValue:
        result = services.bus.dispatch(command, command_metadata(acting_admin().actor))
        if isinstance(result, Failure):
            status = STATUS_BY_CODE.get(result.code, 409)
            typed = {name: str(value) for name, value in values.items()}
            return show(sku, form, typed, {"_": [result.message]}, status=status)
        flash(done, "ok")
        return redirect(url_for("dashboard.inventory.index"), code=303)

    def show(
        sku: str | None = None,
        form: str | None = None,
        values: dict[str, Any] | None = None,
        errors: dict[str, list[str]] | None = None,
        *,
        status: int = 200,
    ) -> Response:
        with side.query() as conn:
            fresh = freshness(side, "catalog", conn=conn)
            products = StockLevels(conn)(fresh.generation)
        attempt = {"sku": sku, "form": form, "values": values or {}, "errors": errors or {}}
        return page(
            "dashboard/inventory.html",
            status=status,
            fresh=fresh,
            refresh=status == 200,
            products=products,
            attempt=attempt,
        )

    @pages.get("/inventory")
    def index() -> Response:
        """Every product with its price and stock: on hand, reserved, available."""
        return show()

    @pages.post("/inventory/<sku>/restock")
    def restock(sku: str) -> ResponseReturnValue:
        """Add stock to a product (RestockProduct)."""
        values, errors = _read(RestockForm(), "quantity")
        if errors:
            return show(sku, "restock", values, errors, status=422)
        quantity: int = values["quantity"]
        return dispatch(RestockProduct(sku, quantity), sku, "restock", values,
                        f"Restocked {sku} by {quantity}.")  # fmt: skip

    @pages.post("/inventory/<sku>/price")
    def price(sku: str) -> ResponseReturnValue:
        """Change a product's price (ChangePrice, same currency)."""
        values, errors = _read(PriceForm(), "amount", "currency")
        if errors:
            return show(sku, "price", values, errors, status=422)
        amount = int(values["amount"] * 100)
        new_price = Money(amount, values["currency"])
        return dispatch(ChangePrice(sku, new_price), sku, "price", values,
                        f"{sku} now costs {money(amount, new_price.currency)}.")  # fmt: skip

    return pages


def _read(schema: ma.Schema, *fields: str) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(parsed values, or what was typed when invalid; errors per field)."""
    typed = {name: request.form.get(name, "").strip() for name in fields}
    try:
        loaded: dict[str, Any] = schema.load({k: v for k, v in typed.items() if v})
    except ma.ValidationError as error:
        return typed, field_errors(error)
    return loaded, {}
