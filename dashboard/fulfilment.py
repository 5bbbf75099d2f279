"""Shipments and returns on an order's page: what is left to ship or to take back, what
each return is waiting for, and the forms that say so.

Everything here reads the order detail document (`shipments`, `returns` and `refunds`
beside the lines), so the page offers only what the document shows is possible; the
order aggregate still decides when the command arrives. A document from before those
lists existed has none: an order shipped then shipped everything, in one go.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from marshmallow import validate

from dashboard.common import field_errors
from kernel.messages import Command
from orders.commands import (
    InspectReturn,
    OrderLineRequest,
    ReceiveReturn,
    RequestReturn,
    ShipOrderLines,
)

MAX_TEXT = 500
SHIPPABLE = ("confirmed", "partially_shipped")  # partially: once some units have left
RETURNABLE = ("confirmed", "partially_shipped", "shipped")
PAYMENT_GOING_BACK = ("refunding", "refunded")
NOTHING_CHOSEN = "Enter how many units of at least one product."


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Must not be blank.")


def _units(lines: Iterable[Mapping[str, Any]]) -> Counter[str]:
    counted: Counter[str] = Counter()
    for line in lines:
        counted[line["sku"]] += int(line["quantity"])
    return counted


def ordered(order: Mapping[str, Any]) -> dict[str, int]:
    """Units per SKU the order holds, in the order of its lines."""
    return dict(_units(order.get("lines", [])))


def shipped(order: Mapping[str, Any]) -> Counter[str]:
    """Units per SKU that have left with a carrier."""
    if "shipments" not in order:  # a document from before partial shipments
        return Counter(ordered(order) if order.get("tracking_number") else {})
    return _units(line for shipment in order["shipments"] for line in shipment["lines"])


def unshipped(order: Mapping[str, Any]) -> dict[str, int]:
    """Units per SKU still to ship (SKUs with none left are left out)."""
    gone = shipped(order)
    return {sku: left for sku, quantity in ordered(order).items() if (left := quantity - gone[sku])}


def returnable(order: Mapping[str, Any]) -> dict[str, int]:
    """Shipped units per SKU that no return has announced yet."""
    back = _units(line for found in order.get("returns", []) for line in found["lines"])
    gone = shipped(order)
    return {sku: left for sku in ordered(order) if (left := gone[sku] - back[sku]) > 0}


def shipment_actions(order: Mapping[str, Any]) -> list[str]:
    """`ship_lines` while a confirmed order has units left to ship and its payment is not
    going back; `request_return` while shipped units could still come back and the
    payment is neither refunded in full nor being refunded."""
    status, payment = order["status"], order.get("payment", {}).get("status")
    actions = []
    if status in SHIPPABLE and payment not in PAYMENT_GOING_BACK and unshipped(order):
        actions.append("ship_lines")
    if status in RETURNABLE and payment not in PAYMENT_GOING_BACK and returnable(order):
        actions.append("request_return")
    return actions


def return_actions(order: Mapping[str, Any] | None) -> dict[str, str]:
    """The next step of each return, by its id: `receive` a requested one, `inspect` a
    received one (an inspected return is done)."""
    steps = {"requested": "receive", "received": "inspect"}
    returns = [] if order is None else order.get("returns", [])
    return {
        found["return_id"]: steps[found["status"]]
        for found in returns
        if found.get("status") in steps
    }


def find_return(order: Mapping[str, Any], return_id: str) -> Mapping[str, Any] | None:
    return next((r for r in order.get("returns", []) if r["return_id"] == return_id), None)


def quantity_field(prefix: str, sku: str) -> str:
    """The form field of one SKU's quantity, e.g. `ship-MUG-1`."""
    return f"{prefix}-{sku}"


def quantity_fields(prefix: str, limits: Mapping[str, int]) -> dict[str, ma.fields.Field[Any]]:
    """A whole number from 0 to its limit per SKU (blank is 0)."""
    return {
        quantity_field(prefix, sku): ma.fields.Integer(
            load_default=0,
            validate=validate.Range(min=0, max=limit, error=f"Enter 0 to {limit}."),
            error_messages={"invalid": "Enter a whole number."},
        )
        for sku, limit in limits.items()
    }


def load(
    schema: ma.Schema, typed: Mapping[str, str], *, some_of: str | None = None
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(the form's values, field errors): blank fields count as not given; with `some_of`
    (a quantity prefix), at least one quantity must be above 0."""
    errors: dict[str, list[str]] = {}
    try:
        loaded: dict[str, Any] = schema.load({k: v for k, v in typed.items() if v})
    except ma.ValidationError as error:
        errors, loaded = field_errors(error), {}
    quantities = [k for k in schema.fields if some_of and k.startswith(f"{some_of}-")]
    chosen = [k for k in quantities if k in errors or loaded.get(k)]
    if some_of and not chosen:
        errors["_"] = [NOTHING_CHOSEN]
    return loaded, errors


def lines_of(
    prefix: str, limits: Mapping[str, int], loaded: Mapping[str, Any]
) -> tuple[OrderLineRequest, ...]:
    """The SKUs given more than 0 units, as command lines."""
    return tuple(
        OrderLineRequest(sku, quantity)
        for sku in limits
        if (quantity := loaded.get(quantity_field(prefix, sku), 0)) > 0
    )


def ship_lines_form(limits: Mapping[str, int]) -> ma.Schema:
    fields: dict[str, ma.fields.Field[Any]] = {
        "shipment_id": ma.fields.UUID(required=True),
        "tracking_number": ma.fields.String(
            required=True, validate=[validate.Length(min=1, max=64), _not_blank]
        ),
    }
    return ma.Schema.from_dict(quantity_fields("ship", limits) | fields, name="ShipLinesForm")()


def return_form(limits: Mapping[str, int]) -> ma.Schema:
    fields: dict[str, ma.fields.Field[Any]] = {
        "return_id": ma.fields.UUID(required=True),
        "reason": ma.fields.String(
            required=True, validate=[validate.Length(min=1, max=MAX_TEXT), _not_blank]
        ),
    }
    return ma.Schema.from_dict(quantity_fields("return", limits) | fields, name="ReturnForm")()


def inspect_form(limits: Mapping[str, int]) -> ma.Schema:
    """Accepted units per SKU of the return (none accepted is fine: all rejected)."""
    note = ma.fields.String(load_default="", validate=validate.Length(max=MAX_TEXT))
    fields = quantity_fields("accept", limits) | {"note": note}
    return ma.Schema.from_dict(fields, name="InspectForm")()


def new_id() -> str:
    """A fresh shipment or return id, put in the form so that posting it twice (or
    confirming twice) names the same shipment or return, and changes nothing more."""
    return str(uuid.uuid4())


def described(lines: Iterable[OrderLineRequest]) -> str:
    """`2 x MUG-1, 1 x TEE-1` (`nothing` for no lines)."""
    return ", ".join(f"{line.quantity} x {line.sku}" for line in lines) or "nothing"


@dataclass(frozen=True, slots=True)
class Step:
    """One shipment or return action on an order's page: its form, its command, and what
    the confirmation (when it has one) and the flash message say."""

    name: str
    prefix: str  # the quantity fields' prefix
    # The most units per SKU the form takes: from the order, and the return when it is one.
    limits: Callable[[Mapping[str, Any], Mapping[str, Any] | None], dict[str, int]]
    form: Callable[[Mapping[str, int]], ma.Schema]
    # (order id, return id or None, the form's limits, its values) -> the command
    command: Callable[[str, str | None, Mapping[str, int], Mapping[str, Any]], Command]
    done: str  # the flash message, formatted with `order` (short id) and `lines`
    some: bool = True  # at least one quantity above 0
    title: str = ""  # the confirmation's heading; none: dispatched without one
    button: str = ""
    consequence: str = ""
    units: str = "Units"  # what the confirmation calls the lines


def _ship(
    order_id: str, _: str | None, limits: Mapping[str, int], form: Mapping[str, Any]
) -> Command:
    lines = lines_of("ship", limits, form)
    return ShipOrderLines(order_id, str(form["shipment_id"]), lines, form["tracking_number"])


def _return(
    order_id: str, _: str | None, limits: Mapping[str, int], form: Mapping[str, Any]
) -> Command:
    lines = lines_of("return", limits, form)
    return RequestReturn(order_id, str(form["return_id"]), lines, form["reason"])


def _receive(
    order_id: str, return_id: str | None, _: Mapping[str, int], __: Mapping[str, Any]
) -> Command:
    return ReceiveReturn(order_id, return_id or "")


def _inspect(
    order_id: str, return_id: str | None, limits: Mapping[str, int], form: Mapping[str, Any]
) -> Command:
    return InspectReturn(order_id, return_id or "", lines_of("accept", limits, form), form["note"])


def _returned(_: Mapping[str, Any], found: Mapping[str, Any] | None) -> dict[str, int]:
    return dict(_units((found or {}).get("lines", [])))


STEPS = {
    "ship_lines": Step(
        "ship_lines", "ship", lambda order, _: unshipped(order), ship_lines_form, _ship,
        "Shipment of order {order} recorded: {lines}.",
        title="Ship some of order", button="Yes, ship these", units="Shipping",
        consequence="These units go to the carrier; the order is shipped once nothing is left.",
    ),
    "request_return": Step(
        "request_return", "return", lambda order, _: returnable(order), return_form, _return,
        "Return of {lines} from order {order} recorded: it waits to be received.",
    ),
    "receive": Step(
        "receive", "receive", _returned, lambda _: ma.Schema(), _receive,
        "The return from order {order} has arrived: inspect it next.", some=False,
    ),
    "inspect": Step(
        "inspect", "accept", _returned, inspect_form, _inspect,
        "Return from order {order} inspected: {lines} accepted.", some=False,
        title="Inspect the return from order", button="Yes, record the inspection",
        units="Accepted (the rest is rejected)",
        consequence=(
            "Accepted units go back on the shelf and what they were charged is refunded"
            " to the customer (shipping is not); the rest is rejected, for good."
        ),
    ),
}  # fmt: skip
