"""The fulfillment saga after the order is confirmed: shipments commit their stock, and an
inspected return restocks the accepted units and refunds them; given these events, then
these commands (and this saga state)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from inventory.commands import CommitReservation, ReleaseInventory, ReservationLine, ReturnStock
from inventory.events import ReservationCommitted, StockLine
from orders.events import ItemLine, OrderShipped, ReturnInspected, ShipmentDispatched
from payments.commands import RefundPayment
from payments.events import PaymentRefunded
from sagas.order_fulfillment import STOCK_MOVING, OrderFulfillmentSaga
from sagas.state import Charge, Progress, Step, StockHeld
from tests.unit.sagas.test_order_fulfillment import (
    CONFIRMED,
    ORDER,
    PAID,
    PLACED,
    RESERVED,
    TOTAL,
    _recorded,
    eur,
    given,
    issued,
    when,
)

MUGS = ShipmentDispatched(ORDER, "shipment-1", (ItemLine("MUG", 2),), "T-1")
TEE = ShipmentDispatched(ORDER, "shipment-2", (ItemLine("TEE", 1),), "T-2")
SHIPPED = OrderShipped(ORDER, "T-2")
READY = [RESERVED, PAID, CONFIRMED]
ALL_SHIPPED = [*READY, MUGS, TEE, SHIPPED]
# One mug of two back (12.50), the shirt rejected.
INSPECTED = ReturnInspected(
    ORDER, "return-1", (ItemLine("MUG", 1),), (ItemLine("TEE", 1),), eur(1250), "shirt worn"
)
RETURN_REFUNDED = PaymentRefunded(
    ORDER, eur(1250), "return return-1", "re_2", "return-1", False, eur(1250)
)


# --- ShipmentDispatched -> CommitReservation of its lines --------------------------------


def test_a_shipment_commits_its_lines_and_the_rest_waits_to_ship() -> None:
    state = given(PLACED, *READY)

    decision = when(state, MUGS)

    assert decision.commands == [
        CommitReservation(ORDER, (ReservationLine("MUG", 2),), "shipment-1")
    ]
    assert decision.state == replace(state, step=Step.PARTIALLY_SHIPPED)
    assert decision.state.state is Progress.COMPLETED


def test_the_next_shipment_commits_its_own_lines() -> None:
    state = given(PLACED, *READY, MUGS)

    decision = when(state, TEE)

    assert decision.commands == [
        CommitReservation(ORDER, (ReservationLine("TEE", 1),), "shipment-2")
    ]
    assert decision.state == state


def test_the_order_shipped_after_its_shipments_commits_what_is_left() -> None:
    state = given(PLACED, *READY, MUGS, TEE)

    decision = when(state, SHIPPED)

    assert decision.commands == [CommitReservation(ORDER)]  # nothing left: a no-op
    assert decision.state == replace(state, step=Step.SHIPPED)


def test_a_shipments_part_of_the_reservation_committed_leaves_the_rest_reserved() -> None:
    state = given(PLACED, *READY, MUGS)
    part = ReservationCommitted(ORDER, (StockLine("MUG", 2),), "shipment-1", complete=False)
    rest = ReservationCommitted(ORDER, (StockLine("TEE", 1),), "shipment-2", complete=True)

    after_part = when(state, part)
    after_rest = when(after_part.state, rest)

    assert (after_part.commands, after_rest.commands) == ([], [])
    assert after_part.state.reservation is StockHeld.RESERVED
    assert after_rest.state == replace(state, reservation=StockHeld.COMMITTED)


# --- ReturnInspected -> ReturnStock + RefundPayment ---------------------------------------


def test_an_inspected_return_restocks_the_accepted_units_and_refunds_them() -> None:
    state = given(PLACED, *ALL_SHIPPED)

    decision = when(state, INSPECTED)

    assert decision.commands == [
        ReturnStock(ORDER, "return-1", (ReservationLine("MUG", 1),)),
        RefundPayment(ORDER, "return return-1", eur(1250), "return-1"),
    ]
    assert decision.state == state
    assert "return-1" in decision.note


def test_a_return_of_a_partly_shipped_order_restocks_and_refunds_too() -> None:
    state = given(PLACED, *READY, MUGS)

    decision = when(state, INSPECTED)

    assert [type(command) for command in decision.commands] == [ReturnStock, RefundPayment]


def test_a_return_rejected_in_full_issues_nothing() -> None:
    state = given(PLACED, *ALL_SHIPPED)
    rejected = ReturnInspected(ORDER, "return-1", (), (ItemLine("MUG", 1),), eur(0))

    decision = when(state, rejected)

    assert (decision.commands, decision.state) == ([], state)


def test_units_accepted_that_were_charged_nothing_are_restocked_not_refunded() -> None:
    state = given(PLACED, *ALL_SHIPPED)
    free = ReturnInspected(ORDER, "return-1", (ItemLine("MUG", 1),), (), eur(0))

    decision = when(state, free)

    assert decision.commands == [ReturnStock(ORDER, "return-1", (ReservationLine("MUG", 1),))]


# --- PaymentRefunded: only a full refund of an unshipped order cancels it --------------


def test_a_returns_partial_refund_cancels_nothing() -> None:
    state = given(PLACED, *ALL_SHIPPED, INSPECTED)

    decision = when(state, RETURN_REFUNDED)

    assert decision.commands == []
    assert decision.state == replace(state, payment=Charge.PARTLY_REFUNDED)


def test_a_partial_refund_of_an_order_awaiting_shipment_does_not_cancel_it() -> None:
    state = given(PLACED, *READY)

    decision = when(state, RETURN_REFUNDED)

    assert decision.commands == []
    assert decision.state == replace(state, payment=Charge.PARTLY_REFUNDED)


# --- the whole journey, and how the saga runs them ---------------------------------------


def test_two_shipments_and_a_return_commit_restock_and_refund_in_turn() -> None:
    commands = issued(PLACED, *ALL_SHIPPED, INSPECTED, RETURN_REFUNDED)

    assert commands[3:] == [
        CommitReservation(ORDER, (ReservationLine("MUG", 2),), "shipment-1"),
        CommitReservation(ORDER, (ReservationLine("TEE", 1),), "shipment-2"),
        CommitReservation(ORDER),
        ReturnStock(ORDER, "return-1", (ReservationLine("MUG", 1),)),
        RefundPayment(ORDER, "return return-1", eur(1250), "return-1"),
    ]
    assert given(PLACED, *ALL_SHIPPED, INSPECTED, RETURN_REFUNDED).step is Step.SHIPPED


def test_the_saga_subscribes_to_shipments_and_inspected_returns() -> None:
    assert {"ShipmentDispatched", "ReturnInspected"} <= OrderFulfillmentSaga.event_types


def test_shipments_and_inspected_returns_count_as_moving_stock_in_a_batch() -> None:
    nothing: Any = None  # batching touches no database
    saga = OrderFulfillmentSaga(nothing, nothing, nothing, timedelta(60), batch_size=20)
    events = [
        _recorded(
            n, replace(MUGS, order_id=f"o{n}") if n % 2 else replace(INSPECTED, order_id=f"o{n}")
        )
        for n in range(1, 7)
    ]

    assert {"ShipmentDispatched", "ReturnInspected"} <= STOCK_MOVING
    assert [[r.position for r in batch] for batch in saga._batches(events)] == [
        [1, 2, 3, 4],
        [5, 6],
    ]


def test_a_full_refund_after_a_partial_shipment_cancels_nothing_and_releases_the_rest() -> None:
    state = given(PLACED, *READY, MUGS)
    refunded = PaymentRefunded(ORDER, TOTAL, "goodwill", "re_1", "", True, TOTAL)

    decision = when(state, refunded)

    # What left cannot be called back; the shirt that did not goes back on sale.
    assert decision.commands == [ReleaseInventory(ORDER)]
    assert (decision.state.step, decision.state.payment) == (Step.SHIPPED, Charge.REFUNDED)
    assert "released" in decision.state.compensation
    assert when(decision.state, refunded).commands == []  # told again: nothing more
