"""What an order's page offers for shipments and returns, read from its order detail
document: given the document, when the page asks, then only what its state allows."""

from __future__ import annotations

from typing import Any

import pytest

from dashboard import fulfilment
from dashboard.orders import allowed_actions
from orders.commands import InspectReturn, OrderLineRequest, ShipOrderLines

ORDER = "6f1d2f4e-7c1a-4b5e-9a57-2f0d8c1e9b31"
SHIPMENT = "0b7c1f7e-4a47-4d1e-9f57-7a3a54c1c001"
RETURN = "0b7c1f7e-4a47-4d1e-9f57-7a3a54c1c002"


def document(status: str = "confirmed", payment: str = "succeeded", **more: Any) -> dict[str, Any]:
    lines = [{"sku": "MUG-1", "quantity": 2}, {"sku": "TEE-1", "quantity": 1}]
    base = {"status": status, "payment": {"status": payment}, "lines": lines}
    return base | {"shipments": [], "returns": [], "refunds": []} | more


def shipment(**units: int) -> dict[str, Any]:
    lines = [{"sku": sku.replace("_", "-"), "quantity": n} for sku, n in units.items()]
    return {"shipment_id": SHIPMENT, "lines": lines, "tracking_number": "T-1"}


def returned(status: str = "requested", **units: int) -> dict[str, Any]:
    lines = [{"sku": sku.replace("_", "-"), "quantity": n} for sku, n in units.items()]
    return {"return_id": RETURN, "lines": lines, "reason": "too small", "status": status}


def test_a_confirmed_order_can_be_shipped_whole_or_in_part_and_cancelled() -> None:
    order = document()

    assert allowed_actions(order) == ["ship", "cancel", "refund", "ship_lines"]
    assert fulfilment.unshipped(order) == {"MUG-1": 2, "TEE-1": 1}
    assert fulfilment.returnable(order) == {}


def test_a_partly_shipped_order_ships_the_rest_takes_returns_and_is_not_cancelled() -> None:
    order = document("partially_shipped", shipments=[shipment(MUG_1=1)])

    assert allowed_actions(order) == ["ship", "ship_lines", "request_return"]
    assert fulfilment.unshipped(order) == {"MUG-1": 1, "TEE-1": 1}
    assert fulfilment.returnable(order) == {"MUG-1": 1}


def test_a_shipped_order_offers_returns_of_what_no_return_announced_yet() -> None:
    order = document(
        "shipped",
        shipments=[shipment(MUG_1=2, TEE_1=1)],
        returns=[returned("inspected", MUG_1=1)],
    )

    assert allowed_actions(order) == ["refund", "request_return"]
    assert fulfilment.returnable(order) == {"MUG-1": 1, "TEE-1": 1}


def test_when_everything_shipped_came_back_no_return_is_offered() -> None:
    order = document(
        "shipped",
        "partially_refunded",
        shipments=[shipment(MUG_1=2, TEE_1=1)],
        returns=[returned("inspected", MUG_1=2, TEE_1=1)],
    )

    assert allowed_actions(order) == ["refund"]


@pytest.mark.parametrize("payment", ["refunding", "refunded"])
def test_a_payment_going_back_stops_shipping_and_returns(payment: str) -> None:
    order = document("partially_shipped", payment, shipments=[shipment(MUG_1=1)])

    assert allowed_actions(order) == []


def test_a_document_from_before_shipment_lists_reads_as_shipped_in_one_go() -> None:
    order = {
        "status": "shipped",
        "payment": {"status": "succeeded"},
        "lines": [{"sku": "MUG-1", "quantity": 2}],
        "tracking_number": "T-1",
    }

    assert fulfilment.unshipped(order) == {}
    assert fulfilment.returnable(order) == {"MUG-1": 2}
    assert allowed_actions(order) == ["refund", "request_return"]


def test_each_return_offers_its_next_step_until_inspected() -> None:
    order = document(
        "shipped",
        returns=[
            returned("requested", MUG_1=1) | {"return_id": "r-1"},
            returned("received", MUG_1=1) | {"return_id": "r-2"},
            returned("inspected", TEE_1=1) | {"return_id": "r-3"},
        ],
    )

    assert fulfilment.return_actions(order) == {"r-1": "receive", "r-2": "inspect"}


def test_a_shipment_form_becomes_the_lines_with_units_and_its_shipment_id() -> None:
    limits = fulfilment.unshipped(document())
    typed = {"ship-MUG-1": "2", "ship-TEE-1": "", "shipment_id": SHIPMENT, "tracking_number": "T-9"}

    loaded, errors = fulfilment.load(fulfilment.ship_lines_form(limits), typed, some_of="ship")
    command = fulfilment.STEPS["ship_lines"].command(ORDER, None, limits, loaded)

    assert errors == {}
    assert command == ShipOrderLines(ORDER, SHIPMENT, (OrderLineRequest("MUG-1", 2),), "T-9")


@pytest.mark.parametrize(
    ("typed", "field", "message"),
    [
        ({"ship-MUG-1": "3"}, "ship-MUG-1", "Enter 0 to 2."),
        ({"ship-MUG-1": "two"}, "ship-MUG-1", "Enter a whole number."),
        ({"ship-MUG-1": "-1"}, "ship-MUG-1", "Enter 0 to 2."),
        ({"ship-MUG-1": "0", "ship-TEE-1": "0"}, "_", fulfilment.NOTHING_CHOSEN),
        ({"ship-MUG-1": "1", "tracking_number": ""}, "tracking_number", "Missing data"),
        ({"ship-MUG-1": "1", "shipment_id": "nope"}, "shipment_id", "Not a valid UUID."),
    ],
)
def test_a_bad_shipment_form_names_the_field(
    typed: dict[str, str], field: str, message: str
) -> None:
    limits = fulfilment.unshipped(document())
    form = {"shipment_id": SHIPMENT, "tracking_number": "T-9"} | typed

    _, errors = fulfilment.load(fulfilment.ship_lines_form(limits), form, some_of="ship")

    assert message in " ".join(errors[field])


def test_an_inspection_may_accept_nothing_and_then_rejects_everything() -> None:
    found = returned("received", MUG_1=2)
    limits = fulfilment.STEPS["inspect"].limits(document(), found)

    loaded, errors = fulfilment.load(fulfilment.inspect_form(limits), {"note": "scratched"})
    command = fulfilment.STEPS["inspect"].command(ORDER, RETURN, limits, loaded)

    assert errors == {}
    assert command == InspectReturn(ORDER, RETURN, (), "scratched")
