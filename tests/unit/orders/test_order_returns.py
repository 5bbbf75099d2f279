"""Returns: given an order's events, when a return is requested, received or inspected,
then its events; and what the accepted units refund."""

from __future__ import annotations

import pytest
from hypothesis import given as for_all
from hypothesis import strategies as st

from kernel.errors import DomainError
from kernel.messages import Event
from orders.domain import Order
from orders.events import (
    ItemLine,
    OrderShipped,
    PricedLine,
    ReturnInspected,
    ReturnReceived,
    ReturnRequested,
    ShipmentDispatched,
)
from tests.support.snapshots import stored
from tests.unit.orders.builders import CUSTOMER, ORDER, eur
from tests.unit.orders.fulfilment_builders import CONFIRMED, given, lines, placed

PARTLY_SHIPPED: list[Event] = [
    *CONFIRMED,
    ShipmentDispatched(ORDER, "shipment-1", (ItemLine("MUG", 2), ItemLine("TEE", 1)), "T-1"),
]
SHIPPED: list[Event] = [
    *PARTLY_SHIPPED,
    ShipmentDispatched(ORDER, "shipment-2", (ItemLine("TEE", 2),), "T-2"),
    OrderShipped(ORDER, "T-2"),
]
REQUESTED = ReturnRequested(ORDER, "return-1", (ItemLine("MUG", 1), ItemLine("TEE", 2)), "too big")
RETURNING: list[Event] = [*SHIPPED, REQUESTED]
RECEIVED: list[Event] = [*RETURNING, ReturnReceived(ORDER, "return-1")]
# TEE: 3 units charged 71.36 in all; one is 23.78 (71.36 / 3 = 23.7866..., rounded down).
INSPECTED = ReturnInspected(
    ORDER, "return-1", (ItemLine("TEE", 1),), (ItemLine("MUG", 1), ItemLine("TEE", 1)),
    eur(2378), "one shirt worn",
)  # fmt: skip
RETURNED: list[Event] = [*RECEIVED, INSPECTED]


# --- RequestReturn ------------------------------------------------------------------------


def test_the_customer_asks_to_return_shipped_units() -> None:
    order = given(SHIPPED)

    order.request_return("return-1", lines(MUG=1, TEE=2), "too big", CUSTOMER)

    assert order.pending_events == (REQUESTED,)


def test_an_operator_asks_for_the_customer() -> None:
    order = given(SHIPPED)

    order.request_return("return-1", lines(MUG=1, TEE=2), "too big")

    assert order.pending_events == (REQUESTED,)


def test_only_units_shipped_so_far_can_come_back() -> None:
    order = given(PARTLY_SHIPPED)  # 1 of 3 shirts shipped

    with pytest.raises(DomainError) as error:
        order.request_return("return-1", lines(TEE=2), "too big")

    assert error.value.code == "exceeds_returnable"
    assert "TEE: 2 > 1" in error.value.message
    assert order.pending_events == ()


def test_an_order_that_never_shipped_has_nothing_to_return() -> None:
    order = given(CONFIRMED)

    with pytest.raises(DomainError) as error:
        order.request_return("return-1", lines(MUG=1), "too big")

    assert error.value.code == "exceeds_returnable"


@pytest.mark.parametrize(
    ("history", "units", "returnable"),
    [
        (RETURNING, {"TEE": 2}, 1),  # 2 of 3 in an open return
        (RECEIVED, {"TEE": 2}, 1),
        (RETURNED, {"TEE": 3}, 2),  # 1 accepted (the rejected mug may come back: below)
    ],
    ids=["requested", "received", "accepted"],
)
def test_units_in_an_open_or_accepted_return_cannot_come_back_again(
    history: list[Event], units: dict[str, int], returnable: int
) -> None:
    order = given(history)

    with pytest.raises(DomainError) as error:
        order.request_return("return-2", lines(**units), "again")

    assert error.value.code == "exceeds_returnable"
    sku, wanted = next(iter(units.items()))
    assert f"{sku}: {wanted} > {returnable}" in error.value.message


def test_rejected_units_may_be_returned_again() -> None:
    order = given(RETURNED)

    order.request_return("return-2", lines(MUG=2, TEE=2), "second try")

    assert order.pending_events == (
        ReturnRequested(ORDER, "return-2", (ItemLine("MUG", 2), ItemLine("TEE", 2)), "second try"),
    )


@pytest.mark.parametrize("customer_id", ["someone-else", ""])
def test_a_customer_cannot_return_an_order_of_someone_else(customer_id: str) -> None:
    order = given(SHIPPED)

    with pytest.raises(DomainError) as error:
        order.request_return("return-1", lines(MUG=1), "mine now", customer_id)

    assert error.value.code == "not_found"
    assert error.value.message == f"order {ORDER} does not exist"


def test_the_same_return_asked_again_changes_nothing() -> None:
    order = given(RETURNING)

    order.request_return("return-1", lines(TEE=2, MUG=1), "too big", CUSTOMER)

    assert order.pending_events == ()


@pytest.mark.parametrize(
    ("units", "reason"),
    [({"MUG": 1}, "too big"), ({"MUG": 1, "TEE": 2}, "too small")],
    ids=["other lines", "other reason"],
)
def test_another_return_under_a_known_id_is_refused(units: dict[str, int], reason: str) -> None:
    order = given(RETURNING)

    with pytest.raises(DomainError) as error:
        order.request_return("return-1", lines(**units), reason)

    assert error.value.code == "return_conflict"


@pytest.mark.parametrize(
    ("requested", "code"),
    [
        (lines(LAMP=1), "unknown_sku"),
        (lines(), "invalid"),
        (lines(MUG=0), "invalid"),
        (lines(MUG=1) + lines(MUG=1), "duplicate_sku"),
    ],
    ids=["unknown sku", "no lines", "zero units", "a sku twice"],
)
def test_a_return_names_units_of_the_order(requested: tuple[object, ...], code: str) -> None:
    order = given(SHIPPED)

    with pytest.raises(DomainError) as error:
        order.request_return("return-1", requested, "because")  # type: ignore[arg-type]

    assert error.value.code == code


# --- ReceiveReturn -----------------------------------------------------------------------


def test_receiving_a_requested_return_records_it() -> None:
    order = given(RETURNING)

    order.receive_return("return-1")

    assert order.pending_events == (ReturnReceived(ORDER, "return-1"),)


@pytest.mark.parametrize("history", [RECEIVED, RETURNED], ids=["received", "inspected"])
def test_receiving_a_return_again_changes_nothing(history: list[Event]) -> None:
    order = given(history)

    order.receive_return("return-1")

    assert order.pending_events == ()


def test_an_unknown_return_is_not_found() -> None:
    order = given(RETURNING)

    with pytest.raises(DomainError) as error:
        order.receive_return("return-9")

    assert error.value.code == "not_found"
    assert error.value.message == f"return return-9 of order {ORDER} does not exist"


# --- InspectReturn -----------------------------------------------------------------------


def test_inspecting_accepts_some_units_rejects_the_rest_and_refunds_what_they_were_charged() -> (
    None
):
    order = given(RECEIVED)

    order.inspect_return("return-1", lines(TEE=1), "one shirt worn")

    assert order.pending_events == (INSPECTED,)


def test_the_units_completing_a_line_refund_what_is_left_of_its_total() -> None:
    order = given(RETURNED)  # one shirt refunded 23.78 of 71.36
    order.request_return("return-2", lines(TEE=2), "the others too")
    order.receive_return("return-2")

    order.inspect_return("return-2", lines(TEE=2))

    refund = order.pending_events[-1]
    assert isinstance(refund, ReturnInspected)
    assert refund.refund == eur(7136 - 2378)  # 47.58, not 2 x 23.78 = 47.56


def test_a_whole_line_back_refunds_its_total_discount_and_tax_included() -> None:
    order = given(RECEIVED)

    order.inspect_return("return-1", lines(MUG=1, TEE=2))

    assert order.pending_events == (
        ReturnInspected(
            ORDER, "return-1", (ItemLine("MUG", 1), ItemLine("TEE", 2)), (),
            eur(2678 // 2 + 2 * 7136 // 3),
        ),
    )  # fmt: skip


def test_accepting_nothing_rejects_everything_and_refunds_nothing() -> None:
    order = given(RECEIVED)

    order.inspect_return("return-1", (), "all damaged")

    assert order.pending_events == (
        ReturnInspected(
            ORDER, "return-1", (), (ItemLine("MUG", 1), ItemLine("TEE", 2)), eur(0),
            "all damaged",
        ),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("units", "message"),
    [({"TEE": 3}, "TEE: 3 > 2"), ({"LAMP": 1}, "LAMP: 1 > 0")],
    ids=["more than returned", "a sku not returned"],
)
def test_no_more_units_are_accepted_than_the_return_holds(
    units: dict[str, int], message: str
) -> None:
    order = given(RECEIVED)

    with pytest.raises(DomainError) as error:
        order.inspect_return("return-1", lines(**units))

    assert error.value.code == "exceeds_returned"
    assert message in error.value.message


def test_a_return_not_received_yet_cannot_be_inspected() -> None:
    order = given(RETURNING)

    with pytest.raises(DomainError) as error:
        order.inspect_return("return-1", lines(TEE=1))

    assert error.value.code == "return_not_received"


def test_the_same_inspection_told_again_changes_nothing() -> None:
    order = given(RETURNED)

    order.inspect_return("return-1", lines(TEE=1), "one shirt worn")

    assert order.pending_events == ()


def test_another_outcome_of_an_inspected_return_is_refused() -> None:
    order = given(RETURNED)

    with pytest.raises(DomainError) as error:
        order.inspect_return("return-1", lines(TEE=2), "one shirt worn")

    assert error.value.code == "return_conflict"


def test_inspecting_an_unknown_return_is_not_found() -> None:
    order = given(RECEIVED)

    with pytest.raises(DomainError) as error:
        order.inspect_return("return-9", ())

    assert error.value.code == "not_found"


@pytest.mark.parametrize("history", [RETURNING, RECEIVED, RETURNED])
def test_a_snapshot_restores_the_same_returns(history: list[Event]) -> None:
    order = given(history)

    restored = Order.from_snapshot(ORDER, order.version, stored(order.snapshot_state()))

    assert vars(restored) == vars(order)


# --- the refunds of every unit add up to what the lines were charged --------------------

SKUS = ("A", "B", "C")


@st.composite
def charged_lines(draw: st.DrawFn) -> tuple[PricedLine, ...]:
    priced = []
    for sku in SKUS[: draw(st.integers(1, len(SKUS)))]:
        quantity = draw(st.integers(1, 7))
        total = eur(draw(st.integers(0, 1_000_000)))
        priced.append(PricedLine(sku, sku, quantity, total, total, eur(0), eur(0), total))
    return tuple(priced)


@for_all(charged_lines(), st.data())
def test_any_returns_of_every_unit_refund_exactly_the_line_totals(
    charged: tuple[PricedLine, ...], data: st.DataObject
) -> None:
    order = Order(ORDER)
    order.replay([placed(*charged)])
    order.confirm()
    order.ship("T-1")
    refunds = eur(0)
    number = 0
    while any(order.returnable().values()):
        # A return of some of what may still come back; the inspection accepts some of it
        # (at least one unit, so the returns end) and rejects the rest.
        open_skus = [sku for sku, n in order.returnable().items() if n > 0]
        back = {sku: data.draw(st.integers(0, order.returnable()[sku])) for sku in open_skus}
        back[open_skus[0]] = max(back[open_skus[0]], 1)
        back = {sku: n for sku, n in back.items() if n}
        kept = {sku: data.draw(st.integers(0, n)) for sku, n in back.items()}
        kept[open_skus[0]] = max(kept[open_skus[0]], 1)
        number += 1
        return_id = f"return-{number}"
        order.request_return(return_id, lines(**back), "because")
        order.receive_return(return_id)
        order.inspect_return(return_id, lines(**{sku: n for sku, n in kept.items() if n}))
        inspected = order.pending_events[-1]
        assert isinstance(inspected, ReturnInspected)
        assert inspected.refund.amount >= 0
        refunds += inspected.refund

    assert refunds == sum((line.total for line in charged), eur(0))
