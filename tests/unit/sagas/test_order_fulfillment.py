"""Order fulfillment saga: given these events, then these commands (and this saga state)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inventory.commands import (
    CommitReservation,
    ReleaseInventory,
    ReservationLine,
    ReserveInventory,
)
from inventory.events import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ReservationCommitted,
    Shortage,
    StockLine,
    StockReserved,
)
from kernel.event_store import RecordedEvent
from kernel.messages import Command, Event
from kernel.money import Money
from orders.commands import CancelOrder, ConfirmOrder
from orders.events import (
    CancelledBy,
    CustomerRegistered,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderShipped,
    PricedLine,
)
from payments.commands import AbandonPayment, ProcessPayment, RefundPayment
from payments.events import PaymentFailed, PaymentPending, PaymentRefunded, PaymentSucceeded
from pricing.commands import ReleaseCouponRedemption
from sagas.order_fulfillment import (
    MOVING_ORDERS_PER_BATCH,
    Decision,
    OrderFulfillment,
    OrderFulfillmentSaga,
)
from sagas.state import Charge, FulfillmentState, Progress, Step, StockHeld
from tests.support.shop import ADDRESS

ORDER = "order-1"
TOKEN = "pm_card_authenticationRequired"  # a charge that waits on 3-D Secure
TIMEOUT = timedelta(minutes=15)
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DEADLINE = NOW + TIMEOUT
LATE_PAYMENT = "payment arrived after the order was cancelled"


def eur(amount: int) -> Money:
    return Money(amount, "EUR")


TOTAL = eur(4998)
PLACED = OrderPlaced(
    order_id=ORDER,
    customer_id="customer-1",
    lines=(
        PricedLine("MUG", "Enamel mug", 2, eur(1250), eur(2500), eur(0), eur(0), eur(2500)),
        PricedLine("TEE", "Logo T-shirt", 1, eur(1999), eur(1999), eur(0), eur(0), eur(1999)),
    ),
    subtotal=eur(4499),
    shipping=eur(499),
    total=TOTAL,
    shipping_address=ADDRESS,
    payment_token=TOKEN,
    discounts=(),
    discount_total=eur(0),
    taxes=(),
    tax_total=eur(0),
    billing_address=ADDRESS,
)
STOCK = (StockLine("MUG", 2), StockLine("TEE", 1))
RESERVED = InventoryReserved(ORDER, STOCK)
OUT_OF_STOCK = InventoryReservationFailed(ORDER, (Shortage("MUG", 2, 1), Shortage("TEE", 1, 0)))
PENDING = PaymentPending(ORDER, TOTAL, "pi_1")
PAID = PaymentSucceeded(ORDER, TOTAL, "pi_1")
DECLINED = PaymentFailed(ORDER, TOTAL, "card_declined")
REFUNDED = PaymentRefunded(ORDER, TOTAL, "order cancelled", "re_1")
CONFIRMED = OrderConfirmed(ORDER)
CANCELLED_BY_CUSTOMER = OrderCancelled(ORDER, "changed my mind", CancelledBy.CUSTOMER, "pending")
CANCELLED_BY_SAGA = OrderCancelled(ORDER, "payment timed out", CancelledBy.SYSTEM, "pending")
SHIPPED = OrderShipped(ORDER, "TRACK-1")
RELEASED = InventoryReleased(ORDER, STOCK)
COMMITTED = ReservationCommitted(ORDER, STOCK)

SAGA = OrderFulfillment(payment_timeout=TIMEOUT)

# The state right after OrderPlaced: every other expected state is a replace() of it.
STARTED = FulfillmentState(
    order_id=ORDER,
    step=Step.RESERVING,
    state=Progress.IN_PROGRESS,
    lines=(("MUG", 2), ("TEE", 1)),
    total=TOTAL,
    payment_token=TOKEN,
    customer_id="customer-1",  # who pays, carried to ProcessPayment
)


def given(placed: OrderPlaced, *events: Event, now: datetime = NOW) -> FulfillmentState:
    """The saga's state after starting on `placed` and handling `events` at `now`."""
    return then(SAGA.start(placed).state, *events, now=now)


def given_timed_out(placed: OrderPlaced, *events: Event) -> FulfillmentState:
    """The history, then the payment deadline passing with no answer."""
    return SAGA.time_out(given(placed, *events), DEADLINE).state


def then(state: FulfillmentState, *events: Event, now: datetime = NOW) -> FulfillmentState:
    """`state` after handling `events` at `now`."""
    for event in events:
        state = SAGA.handle(state, event, now).state
    return state


def when(state: FulfillmentState, event: Event, now: datetime = NOW) -> Decision:
    return SAGA.handle(state, event, now)


# --- OrderPlaced -> ReserveInventory -------------------------------------------


def test_a_placed_order_reserves_the_orders_lines() -> None:
    decision = SAGA.start(PLACED)

    assert decision.commands == [
        ReserveInventory(ORDER, (ReservationLine("MUG", 2), ReservationLine("TEE", 1)))
    ]
    assert decision.state == STARTED
    assert (decision.state.reservation, decision.state.payment) == ("requested", "not_started")
    assert decision.state.deadline is None
    assert not decision.state.timed_out


# --- InventoryReserved -> ProcessPayment with a deadline ------------------------


def test_reserved_stock_charges_the_order_total_with_its_token_and_sets_a_deadline() -> None:
    reserved_at = NOW + timedelta(seconds=42)

    decision = when(given(PLACED), RESERVED, now=reserved_at)

    assert decision.commands == [ProcessPayment(ORDER, TOTAL, TOKEN, "customer-1")]
    assert decision.state == replace(
        STARTED, step=Step.PAYING, reservation=StockHeld.RESERVED, deadline=reserved_at + TIMEOUT
    )


# --- InventoryReservationFailed -> CancelOrder ----------------------------------


def test_a_failed_reservation_cancels_the_order_naming_every_short_sku() -> None:
    decision = when(given(PLACED), OUT_OF_STOCK)

    assert decision.commands == [CancelOrder(ORDER, "out of stock: MUG, TEE", CancelledBy.SYSTEM)]
    assert decision.state == replace(
        STARTED,
        step=Step.CANCELLING,
        reservation=StockHeld.FAILED,
        compensation="out of stock: MUG, TEE",
    )


def test_a_failed_reservation_of_one_sku_names_that_sku() -> None:
    short = InventoryReservationFailed(ORDER, (Shortage("LAMP", 3, 0),))

    decision = when(given(PLACED), short)

    assert decision.commands == [CancelOrder(ORDER, "out of stock: LAMP", CancelledBy.SYSTEM)]


def test_the_order_cancelled_for_want_of_stock_is_compensated_with_nothing_to_undo() -> None:
    decision = when(
        given(PLACED, OUT_OF_STOCK), OrderCancelled(ORDER, "x", CancelledBy.SYSTEM, "pending")
    )

    assert decision.commands == []
    assert decision.state == replace(
        STARTED,
        step=Step.CANCELLED,
        state=Progress.COMPENSATED,
        reservation=StockHeld.FAILED,
        compensation="out of stock: MUG, TEE",
    )


# --- PaymentPending -> nothing ---------------------------------------------------


def test_a_pending_payment_issues_nothing_and_keeps_the_deadline() -> None:
    decision = when(given(PLACED, RESERVED), PENDING, now=NOW + timedelta(minutes=5))

    assert decision.commands == []
    assert decision.state == replace(
        STARTED,
        step=Step.PAYING,
        reservation=StockHeld.RESERVED,
        payment=Charge.PENDING,
        deadline=DEADLINE,
    )


# --- PaymentSucceeded while paying -> ConfirmOrder ------------------------------


@pytest.mark.parametrize("history", [[RESERVED], [RESERVED, PENDING]], ids=["at once", "pending"])
def test_a_payment_while_paying_confirms_the_order_and_clears_the_deadline(
    history: list[Event],
) -> None:
    decision = when(given(PLACED, *history), PAID)

    assert decision.commands == [ConfirmOrder(ORDER)]
    assert decision.state == replace(
        STARTED,
        step=Step.CONFIRMING,
        reservation=StockHeld.RESERVED,
        payment=Charge.SUCCEEDED,
        deadline=None,
    )


# --- PaymentFailed while paying -> ReleaseInventory + CancelOrder ---------------


@pytest.mark.parametrize("history", [[RESERVED], [RESERVED, PENDING]], ids=["at once", "pending"])
def test_a_failed_payment_releases_the_stock_and_cancels_with_the_gateways_reason(
    history: list[Event],
) -> None:
    decision = when(given(PLACED, *history), DECLINED)

    assert decision.commands == [
        ReleaseInventory(ORDER),
        CancelOrder(ORDER, "payment failed: card_declined", CancelledBy.SYSTEM),
    ]
    assert decision.state == replace(
        STARTED,
        step=Step.CANCELLING,
        reservation=StockHeld.RESERVED,
        payment=Charge.FAILED,
        deadline=None,
        compensation="payment failed: card_declined",
    )


def test_the_order_cancelled_for_a_failed_payment_is_compensated_with_nothing_more() -> None:
    state = given(PLACED, RESERVED, DECLINED, RELEASED)

    decision = when(
        state, OrderCancelled(ORDER, "payment failed: card_declined", CancelledBy.SYSTEM, "x")
    )

    assert decision.commands == []
    assert decision.state == replace(
        STARTED,
        step=Step.CANCELLED,
        state=Progress.COMPENSATED,
        reservation=StockHeld.RELEASED,
        payment=Charge.FAILED,
        compensation="payment failed: card_declined",
    )


# --- the payment deadline --------------------------------------------------------


@pytest.mark.parametrize("history", [[RESERVED], [RESERVED, PENDING]], ids=["no answer", "pending"])
@pytest.mark.parametrize("at", [DEADLINE, DEADLINE + timedelta(seconds=1)], ids=["at", "after"])
def test_a_deadline_passed_while_paying_releases_the_stock_and_cancels(
    history: list[Event], at: datetime
) -> None:
    state = given(PLACED, *history)

    decision = SAGA.time_out(state, at)

    assert decision.commands == [
        ReleaseInventory(ORDER),
        CancelOrder(ORDER, "payment timed out", CancelledBy.SYSTEM),
        AbandonPayment(ORDER, "payment timed out"),  # no charge is made after this
    ]
    assert decision.state == replace(
        state, step=Step.CANCELLING, deadline=None, timed_out=True, compensation="payment timed out"
    )


def test_a_deadline_not_yet_passed_issues_nothing() -> None:
    state = given(PLACED, RESERVED, PENDING)

    assert SAGA.time_out(state, DEADLINE - timedelta(microseconds=1)) == Decision(state)


def test_a_paying_saga_without_a_deadline_never_times_out() -> None:
    state = replace(given(PLACED, RESERVED), deadline=None)

    assert SAGA.time_out(state, DEADLINE + timedelta(days=1)) == Decision(state)


@pytest.mark.parametrize(
    "history",
    [
        [],
        [RESERVED, PAID],
        [RESERVED, PAID, CONFIRMED],
        [RESERVED, PAID, CONFIRMED, SHIPPED],
        [RESERVED, DECLINED],
        [RESERVED, CANCELLED_BY_CUSTOMER],
        [OUT_OF_STOCK],
    ],
    ids=["reserving", "paid", "confirmed", "shipped", "failed", "cancelled", "out of stock"],
)
def test_a_deadline_outside_the_paying_step_issues_nothing(history: list[Event]) -> None:
    state = given(PLACED, *history)

    assert SAGA.time_out(state, DEADLINE + timedelta(days=1)) == Decision(state)


def test_a_deadline_handled_twice_compensates_once() -> None:
    state = given_timed_out(PLACED, RESERVED)

    assert SAGA.time_out(state, DEADLINE + timedelta(minutes=1)) == Decision(state)


# --- after timing out -------------------------------------------------------------


@pytest.mark.parametrize("history", [[RESERVED], [RESERVED, PENDING]], ids=["no answer", "pending"])
def test_a_payment_arriving_after_the_deadline_is_refunded(history: list[Event]) -> None:
    state = given_timed_out(PLACED, *history)

    decision = when(state, PAID)

    assert decision.commands == [RefundPayment(ORDER, LATE_PAYMENT)]
    assert decision.state == replace(state, payment=Charge.REFUNDING)
    assert decision.state.step == "cancelling"


def test_a_payment_failing_after_the_deadline_issues_nothing() -> None:
    state = given_timed_out(PLACED, RESERVED, PENDING)

    decision = when(state, DECLINED)

    assert decision.commands == []
    assert decision.state == replace(state, payment=Charge.FAILED)


def test_the_order_cancelled_for_timing_out_is_compensated_with_nothing_more() -> None:
    state = then(given_timed_out(PLACED, RESERVED, PENDING), RELEASED)

    decision = when(state, CANCELLED_BY_SAGA)

    assert decision.commands == []
    assert decision.state == replace(
        STARTED,
        step=Step.CANCELLED,
        state=Progress.COMPENSATED,
        reservation=StockHeld.RELEASED,
        payment=Charge.PENDING,
        timed_out=True,
        compensation="payment timed out",
    )


def test_a_payment_refunded_for_arriving_late_is_not_refunded_again_on_cancellation() -> None:
    # Race: the provider's success was logged, the deadline fired before the saga read it.
    state = given_timed_out(PLACED, RESERVED, PENDING)
    assert when(state, PAID).commands == [RefundPayment(ORDER, LATE_PAYMENT)]

    decision = when(then(state, PAID, RELEASED), CANCELLED_BY_SAGA)

    assert decision.commands == []
    assert decision.state.step == "cancelled"
    assert decision.state.state == "compensated"


# --- OrderConfirmed -> completed --------------------------------------------------


def test_a_confirmed_order_completes_the_saga_with_no_commands() -> None:
    decision = when(given(PLACED, RESERVED, PAID), CONFIRMED)

    assert decision.commands == []
    assert decision.state == replace(
        STARTED,
        step=Step.AWAITING_SHIPMENT,
        state=Progress.COMPLETED,
        reservation=StockHeld.RESERVED,
        payment=Charge.SUCCEEDED,
    )


# --- OrderCancelled -> compensation -------------------------------------------------


@pytest.mark.parametrize("history", [[PAID, CONFIRMED], [PAID]], ids=["confirmed", "confirming"])
def test_a_paid_order_cancelled_is_refunded_and_its_stock_released(history: list[Event]) -> None:
    state = given(PLACED, RESERVED, *history)

    decision = when(state, CANCELLED_BY_CUSTOMER)

    assert decision.commands == [RefundPayment(ORDER, "order cancelled"), ReleaseInventory(ORDER)]
    assert decision.state == replace(
        state,
        step=Step.CANCELLED,
        state=Progress.COMPENSATED,
        deadline=None,
        compensation="cancelled by customer: changed my mind",
    )


def test_an_order_refunded_before_its_confirmation_was_handled_is_cancelled_on_it() -> None:
    paid = given(PLACED, RESERVED, PAID)  # ConfirmOrder issued; an admin refunds meanwhile

    refunded = when(paid, REFUNDED)
    confirmed = when(refunded.state, CONFIRMED)

    assert refunded.commands == []
    assert confirmed.commands == [CancelOrder(ORDER, "payment refunded", CancelledBy.SYSTEM)]
    assert confirmed.state == replace(
        paid, step=Step.CANCELLING, payment=Charge.REFUNDED, compensation="payment refunded"
    )


def test_the_refund_and_release_of_a_cancelled_order_update_the_state_only() -> None:
    state = given(PLACED, RESERVED, PAID, CONFIRMED, CANCELLED_BY_CUSTOMER)

    refunded = when(state, REFUNDED)
    released = when(refunded.state, RELEASED)

    assert (refunded.commands, released.commands) == ([], [])
    assert released.state == replace(
        STARTED,
        step=Step.CANCELLED,
        state=Progress.COMPENSATED,
        reservation=StockHeld.RELEASED,
        payment=Charge.REFUNDED,
        compensation="cancelled by customer: changed my mind",
    )


# --- PaymentRefunded before shipping -> CancelOrder ------------------------------------


def test_a_confirmed_order_refunded_before_shipping_is_cancelled_and_its_stock_released() -> None:
    state = given(PLACED, RESERVED, PAID, CONFIRMED)

    refunded = when(state, REFUNDED)
    cancelled = when(refunded.state, CANCELLED_BY_SAGA)

    assert refunded.commands == [CancelOrder(ORDER, "payment refunded", CancelledBy.SYSTEM)]
    assert refunded.state == replace(
        state, step=Step.CANCELLING, payment=Charge.REFUNDED, compensation="payment refunded"
    )
    assert cancelled.commands == [ReleaseInventory(ORDER)]  # no second refund
    assert cancelled.state.state is Progress.COMPENSATED


def test_a_shipped_order_refunded_stays_shipped() -> None:
    state = given(PLACED, RESERVED, PAID, CONFIRMED, SHIPPED)

    decision = when(state, REFUNDED)

    assert decision.commands == []
    assert decision.state == replace(state, payment=Charge.REFUNDED)


def test_an_order_cancelled_while_reserving_issues_nothing() -> None:
    decision = when(given(PLACED), CANCELLED_BY_CUSTOMER)

    assert decision.commands == []
    assert decision.state == replace(
        STARTED,
        step=Step.CANCELLED,
        state=Progress.COMPENSATED,
        compensation="cancelled by customer: changed my mind",
    )


def test_stock_reserved_after_the_order_was_cancelled_is_released() -> None:
    state = given(PLACED, CANCELLED_BY_CUSTOMER)

    decision = when(state, RESERVED)

    assert decision.commands == [ReleaseInventory(ORDER)]
    assert decision.state == replace(state, reservation=StockHeld.RESERVED)
    assert when(decision.state, RELEASED).state == replace(state, reservation=StockHeld.RELEASED)


def test_a_reservation_failing_after_the_order_was_cancelled_issues_nothing() -> None:
    state = given(PLACED, CANCELLED_BY_CUSTOMER)

    assert when(state, OUT_OF_STOCK) == Decision(state)


def test_an_order_cancelled_while_payment_is_pending_releases_the_stock_and_abandons_it() -> None:
    state = given(PLACED, RESERVED, PENDING)

    decision = when(state, CANCELLED_BY_CUSTOMER)

    assert decision.commands == [ReleaseInventory(ORDER), AbandonPayment(ORDER, "order cancelled")]
    assert decision.state == replace(
        state,
        step=Step.CANCELLED,
        state=Progress.COMPENSATED,
        deadline=None,
        compensation="cancelled by customer: changed my mind",
    )


def test_a_pending_payment_succeeding_after_the_order_was_cancelled_is_refunded() -> None:
    state = given(PLACED, RESERVED, PENDING, CANCELLED_BY_CUSTOMER, RELEASED)

    decision = when(state, PAID)

    assert decision.commands == [RefundPayment(ORDER, LATE_PAYMENT)]
    assert decision.state == replace(state, payment=Charge.REFUNDING)


def test_a_pending_payment_failing_after_the_order_was_cancelled_issues_nothing() -> None:
    state = given(PLACED, RESERVED, PENDING, CANCELLED_BY_CUSTOMER, RELEASED)

    decision = when(state, DECLINED)

    assert decision.commands == []
    assert decision.state == replace(state, payment=Charge.FAILED)


def test_an_order_cancelled_before_any_payment_answer_releases_the_stock_and_abandons_it() -> None:
    state = given(PLACED, RESERVED)

    decision = when(state, CANCELLED_BY_CUSTOMER)

    assert decision.commands == [ReleaseInventory(ORDER), AbandonPayment(ORDER, "order cancelled")]
    assert decision.state == replace(
        state,
        step=Step.CANCELLED,
        state=Progress.COMPENSATED,
        deadline=None,
        compensation="cancelled by customer: changed my mind",
    )


# --- OrderShipped -> CommitReservation ------------------------------------------------


def test_a_shipped_order_commits_its_reservation() -> None:
    state = given(PLACED, RESERVED, PAID, CONFIRMED)

    decision = when(state, SHIPPED)

    assert decision.commands == [CommitReservation(ORDER)]
    assert decision.state == replace(state, step=Step.SHIPPED)
    assert decision.state.state == "completed"


def test_a_committed_reservation_updates_the_state_only() -> None:
    state = given(PLACED, RESERVED, PAID, CONFIRMED, SHIPPED)

    decision = when(state, COMMITTED)

    assert decision.commands == []
    assert decision.state == replace(state, reservation=StockHeld.COMMITTED)


# --- results of the saga's own commands: state only ----------------------------------


@pytest.mark.parametrize(
    ("history", "event", "reservation", "payment"),
    [
        ([RESERVED, DECLINED], RELEASED, "released", "failed"),
        ([RESERVED, PAID, CONFIRMED, SHIPPED], COMMITTED, "committed", "succeeded"),
        ([RESERVED, PAID, CONFIRMED, CANCELLED_BY_CUSTOMER], REFUNDED, "reserved", "refunded"),
    ],
    ids=["released", "committed", "refunded"],
)
def test_released_committed_and_refunded_update_the_state_only(
    history: list[Event], event: Event, reservation: str, payment: str
) -> None:
    state = given(PLACED, *history)

    decision = when(state, event)

    assert decision.commands == []
    assert decision.state == replace(
        state, reservation=StockHeld(reservation), payment=Charge(payment)
    )


# --- events that mean nothing where they arrive ---------------------------------------


@pytest.mark.parametrize(
    ("history", "event"),
    [
        ([RESERVED], PLACED),
        ([RESERVED, PAID, CONFIRMED], PLACED),
        ([RESERVED], OUT_OF_STOCK),
        ([RESERVED, PAID, CONFIRMED], OUT_OF_STOCK),
        ([CANCELLED_BY_CUSTOMER], OUT_OF_STOCK),
        ([RESERVED], StockReserved("MUG", ORDER, 2, 10, 8)),
        ([RESERVED, PENDING], CustomerRegistered("customer-1", "ada@example.com", "Ada")),
    ],
    ids=[
        "placed again while paying",
        "placed again when confirmed",
        "reservation failed while paying",
        "reservation failed when confirmed",
        "reservation failed when cancelled",
        "an unsubscribed inventory event",
        "an unsubscribed orders event",
    ],
)
def test_an_event_that_means_nothing_in_this_step_issues_nothing(
    history: list[Event], event: Event
) -> None:
    state = given(PLACED, *history)

    assert when(state, event) == Decision(state)


# --- whole journeys -----------------------------------------------------------------------


def issued(placed: OrderPlaced, *events: Event) -> list[Command]:
    """Every command the saga issues, in order, from `placed` through `events`."""
    decision = SAGA.start(placed)
    commands = list(decision.commands)
    for event in events:
        decision = SAGA.handle(decision.state, event, NOW)
        commands += decision.commands
    return commands


def test_the_happy_path_reserves_charges_confirms_and_commits() -> None:
    assert issued(PLACED, RESERVED, PAID, CONFIRMED, SHIPPED, COMMITTED) == [
        ReserveInventory(ORDER, (ReservationLine("MUG", 2), ReservationLine("TEE", 1))),
        ProcessPayment(ORDER, TOTAL, TOKEN, "customer-1"),
        ConfirmOrder(ORDER),
        CommitReservation(ORDER),
    ]
    assert given(PLACED, RESERVED, PAID, CONFIRMED, SHIPPED, COMMITTED) == replace(
        STARTED,
        step=Step.SHIPPED,
        state=Progress.COMPLETED,
        reservation=StockHeld.COMMITTED,
        payment=Charge.SUCCEEDED,
    )


def test_a_declined_card_releases_the_stock_once_and_cancels_once() -> None:
    cancelled = OrderCancelled(
        ORDER, "payment failed: card_declined", CancelledBy.SYSTEM, "pending"
    )

    assert issued(PLACED, RESERVED, DECLINED, RELEASED, cancelled) == [
        ReserveInventory(ORDER, (ReservationLine("MUG", 2), ReservationLine("TEE", 1))),
        ProcessPayment(ORDER, TOTAL, TOKEN, "customer-1"),
        ReleaseInventory(ORDER),
        CancelOrder(ORDER, "payment failed: card_declined", CancelledBy.SYSTEM),
    ]


def _recorded(position: int, event: Event) -> RecordedEvent:
    return RecordedEvent(
        position, 1, "s", "order", position, type(event).__name__, {}, datetime.now(UTC),
        decoded=event,
    )  # fmt: skip


def test_a_batch_holds_few_orders_whose_stock_may_move() -> None:
    nothing: Any = None  # batching touches no database
    saga = OrderFulfillmentSaga(nothing, nothing, nothing, timedelta(60), batch_size=6)
    assert MOVING_ORDERS_PER_BATCH == 4
    events = [_recorded(n, OrderShipped(f"o{n}", "T")) for n in range(1, 10)]
    events.insert(2, _recorded(20, OrderConfirmed("o1")))  # no stock moves: rides along
    batches = [[r.position for r in batch] for batch in saga._batches(events)]
    assert batches == [[1, 2, 20, 3, 4], [5, 6, 7, 8], [9]]
    events = [_recorded(n, OrderConfirmed(f"o{n}")) for n in range(1, 14)]
    assert [len(b) for b in saga._batches(events)] == [6, 6, 1]


# --- a coupon's use goes back when the order is cancelled ---------------------------


def test_a_cancelled_order_gives_its_coupon_use_back_besides_refunding_and_releasing() -> None:
    with_coupon = replace(PLACED, coupon_code="SAVE10")
    confirmed = given(with_coupon, RESERVED, PAID)

    decision = when(
        confirmed, OrderCancelled(ORDER, "changed my mind", CancelledBy.CUSTOMER, "confirmed")
    )

    assert decision.commands == [
        RefundPayment(ORDER, "order cancelled"),
        ReleaseInventory(ORDER),
        ReleaseCouponRedemption("SAVE10", ORDER),
    ]
    assert decision.state.coupon_code == "SAVE10"


def test_an_order_without_a_coupon_gives_none_back() -> None:
    decision = when(
        given(PLACED, OUT_OF_STOCK), OrderCancelled(ORDER, "x", CancelledBy.SYSTEM, "pending")
    )

    assert not any(isinstance(command, ReleaseCouponRedemption) for command in decision.commands)
