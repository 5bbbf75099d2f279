"""Order fulfillment: the process manager that takes an order from placed to shipped.

    OrderPlaced                -> ReserveInventory
    InventoryReserved          -> ProcessPayment (and a payment deadline)
    InventoryReservationFailed -> CancelOrder (out of stock, naming the SKUs)
    PaymentSucceeded           -> ConfirmOrder
    PaymentFailed              -> ReleaseInventory + CancelOrder (the gateway's reason)
    deadline, no payment yet   -> ReleaseInventory + CancelOrder ("payment timed out")
    PaymentSucceeded too late  -> RefundPayment
    OrderCancelled after paid  -> RefundPayment + ReleaseInventory
    OrderShipped               -> CommitReservation

`OrderFulfillment` decides (pure: state + event -> new state + commands); the
`OrderFulfillmentSaga` subscriber runs it on the log, one event per transaction
holding the saga's state, the commands' events and its checkpoint. Command ids
derive from (saga, event), so a redelivered event issues nothing twice.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine

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
)
from kernel.command_bus import CommandBus
from kernel.errors import CheckpointMoved, ConcurrencyError
from kernel.event_store import Checkpoint, RecordedEvent
from kernel.messages import Command, Event, Metadata, utc_now
from kernel.subscriptions import read_checkpoint, store_checkpoint
from orders.commands import CancelOrder, ConfirmOrder
from orders.events import OrderCancelled, OrderConfirmed, OrderPlaced, OrderShipped
from payments.commands import ProcessPayment, RefundPayment
from payments.events import PaymentFailed, PaymentPending, PaymentRefunded, PaymentSucceeded
from sagas import store
from sagas.store import FulfillmentState

log = logging.getLogger("sagas.order_fulfillment")

NAME = "order_fulfillment"
ACTOR = f"saga:{NAME}"
_IDS = uuid.UUID("3c0f9d7e-52b1-4f7a-8f61-0d4b5e2c9a18")


def command_id(cause_id: str, index: int) -> str:
    """The id of the `index`-th command the saga issues for the event (or deadline) `cause_id`."""
    return str(uuid.uuid5(_IDS, f"{cause_id}/{index}"))


def deadline_id(order_id: str) -> str:
    """The message id standing for an order's payment deadline, the cause of its commands."""
    return str(uuid.uuid5(_IDS, f"deadline/{order_id}"))


SUBSCRIBED = (
    OrderPlaced, InventoryReserved, InventoryReservationFailed, PaymentPending,
    PaymentSucceeded, PaymentFailed, OrderConfirmed, OrderCancelled, OrderShipped,
    InventoryReleased, ReservationCommitted, PaymentRefunded,
)  # fmt: skip
_SUBSCRIBED_NAMES = frozenset(cls.__name__ for cls in SUBSCRIBED)
CANCELLED_STEPS = frozenset({"cancelling", "cancelled"})
PAYMENT_RESULTS = (PaymentSucceeded.__name__, PaymentFailed.__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one saga transaction issued, and a deadline to schedule once it committed."""

    issued: list[RecordedEvent] = field(default_factory=list)
    order_id: str = ""
    deadline: datetime | None = None
    acted: bool = False


@dataclass
class Decision:
    state: FulfillmentState
    commands: list[Command] = field(default_factory=list)
    note: str = ""


class OrderFulfillment:
    """The saga's decisions, free of storage: given events, then commands."""

    def __init__(self, payment_timeout: timedelta) -> None:
        self.payment_timeout = payment_timeout

    def start(self, event: OrderPlaced) -> Decision:
        lines = tuple((line.sku, line.quantity) for line in event.lines)
        state = FulfillmentState(
            event.order_id, "reserving", "in_progress", lines, event.total, event.payment_token
        )
        reserve = ReserveInventory(
            event.order_id, tuple(ReservationLine(sku, qty) for sku, qty in lines)
        )
        return Decision(state, [reserve], "reserving stock")

    def handle(self, state: FulfillmentState, event: Event, now: datetime) -> Decision:
        order_id = state.order_id
        match event:
            case InventoryReserved() if state.step == "reserving":
                deadline = now + self.payment_timeout
                paying = replace(state, step="paying", reservation="reserved", deadline=deadline)
                charge = ProcessPayment(order_id, state.total, state.payment_token)
                return Decision(paying, [charge], "stock reserved, charging")
            case InventoryReserved() if state.step in CANCELLED_STEPS:
                # The order was cancelled while stock was being reserved: give it back.
                held = replace(state, reservation="reserved")
                return Decision(held, [ReleaseInventory(order_id)], "releasing late reservation")
            case InventoryReservationFailed(shortages=shortages) if state.step == "reserving":
                skus = ", ".join(shortage.sku for shortage in shortages)
                cancel = CancelOrder(order_id, f"out of stock: {skus}", "system")
                failed = replace(state, step="cancelling", reservation="failed")
                return Decision(failed, [cancel], f"out of stock: {skus}")
            case PaymentPending():
                return Decision(replace(state, payment="pending"), [], "payment pending")
            case PaymentSucceeded() if state.step == "paying":
                confirming = replace(state, step="confirming", payment="succeeded", deadline=None)
                return Decision(confirming, [ConfirmOrder(order_id)], "paid, confirming")
            case PaymentSucceeded() if state.step in CANCELLED_STEPS:
                refund = RefundPayment(order_id, "payment arrived after the order was cancelled")
                late = replace(state, payment="refunding")
                return Decision(late, [refund], "late payment, refunding")
            case PaymentFailed(reason=reason) if state.step == "paying":
                failed = replace(state, step="cancelling", payment="failed", deadline=None)
                cancel = CancelOrder(order_id, f"payment failed: {reason}", "system")
                return Decision(failed, [ReleaseInventory(order_id), cancel], "payment failed")
            case PaymentFailed():
                return Decision(replace(state, payment="failed"), [], "payment failed late")
            case OrderConfirmed():
                return Decision(replace(state, step="awaiting_shipment", state="completed"))
            case OrderCancelled():
                return self._cancelled(state)
            case OrderShipped():
                shipped = replace(state, step="shipped")
                return Decision(shipped, [CommitReservation(order_id)], "shipped")
            case InventoryReleased():
                return Decision(replace(state, reservation="released"))
            case ReservationCommitted():
                return Decision(replace(state, reservation="committed"))
            case PaymentRefunded():
                return Decision(replace(state, payment="refunded"))
        return Decision(state)

    def time_out(self, state: FulfillmentState, now: datetime) -> Decision:
        """No payment result by the deadline: compensate as for a failed payment."""
        if state.step != "paying" or state.deadline is None or state.deadline > now:
            return Decision(state)
        timed_out = replace(state, step="cancelling", deadline=None, timed_out=True)
        cancel = CancelOrder(state.order_id, "payment timed out", "system")
        return Decision(timed_out, [ReleaseInventory(state.order_id), cancel], "payment timed out")

    def _cancelled(self, state: FulfillmentState) -> Decision:
        commands: list[Command] = []
        if state.payment == "succeeded":
            commands.append(RefundPayment(state.order_id, "order cancelled"))
        if state.reservation == "reserved":
            commands.append(ReleaseInventory(state.order_id))
        done = replace(state, step="cancelled", state="compensated", deadline=None)
        return Decision(done, commands, "cancelled" + (", compensating" if commands else ""))


class OrderFulfillmentSaga:
    """Runs the saga on the log as a subscriber, and on its deadlines."""

    name = NAME
    event_types = _SUBSCRIBED_NAMES

    def __init__(
        self,
        engine: Engine,
        bus: CommandBus,
        payment_timeout: timedelta,
        schedule_deadline: Callable[[str, datetime], None] = lambda order_id, at: None,
        attempts: int = 5,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.decide = OrderFulfillment(payment_timeout)
        self.schedule_deadline = schedule_deadline
        self.attempts = attempts

    def checkpoint(self, conn: Connection) -> Checkpoint:
        with conn.begin():
            return read_checkpoint(conn, self.name)

    def apply(
        self, conn: Connection, events: Sequence[RecordedEvent], after: Checkpoint | None = None
    ) -> None:
        """Each event in its own transaction with the checkpoint (the batch is not atomic)."""
        if after is not None and self.checkpoint(conn) != after:
            raise CheckpointMoved(f"{self.name} is not at {after.token()}")
        skipped: RecordedEvent | None = None  # events the saga does not react to
        for recorded in events:
            if recorded.type not in _SUBSCRIBED_NAMES:
                skipped = recorded
                continue
            if skipped is not None:
                self._pass(conn, skipped)
                skipped = None
            self._retrying(functools.partial(self._handle, conn, recorded))
        if skipped is not None:
            self._pass(conn, skipped)

    def _pass(self, conn: Connection, recorded: RecordedEvent) -> None:
        """Move the checkpoint over a run of events that concern nobody here."""
        with conn.begin():
            if read_checkpoint(conn, self.name, for_update=True) < recorded.checkpoint:
                store_checkpoint(conn, self.name, recorded.checkpoint)

    def time_out(self, order_id: str) -> bool:
        """Compensate one order whose payment deadline passed; False if nothing was due."""
        with self.engine.connect() as conn:
            return self._retrying(functools.partial(self._time_out, conn, order_id)).acted

    def overdue(self, limit: int = 100) -> list[str]:
        with self.engine.connect() as conn:
            return store.overdue(conn, utc_now(), limit)

    def _retrying(self, work: Callable[[], Outcome]) -> Outcome:
        """Run one transaction, again on a concurrency conflict; then wake and schedule."""
        for attempt in range(1, self.attempts + 1):
            try:
                outcome = work()
                break
            except ConcurrencyError:
                if attempt == self.attempts:
                    raise
        self.bus.notify_committed(outcome.issued)
        if outcome.deadline is not None:
            self.schedule_deadline(outcome.order_id, outcome.deadline)
        return outcome

    def _handle(self, conn: Connection, recorded: RecordedEvent) -> Outcome:
        with conn.begin():
            if read_checkpoint(conn, self.name, for_update=True) >= recorded.checkpoint:
                return Outcome()
            outcome = Outcome()
            if recorded.type in _SUBSCRIBED_NAMES:
                outcome = self._react(conn, recorded)
            store_checkpoint(conn, self.name, recorded.checkpoint)
        return outcome

    def _react(self, conn: Connection, recorded: RecordedEvent) -> Outcome:
        order_id = recorded.data["order_id"]
        found = store.load(conn, order_id)
        if found is None and not isinstance(recorded.event, OrderPlaced):
            return Outcome()  # an order this saga never started
        if found is not None and found.last >= recorded.checkpoint:
            return Outcome()  # replayed from an earlier checkpoint: handled already
        if found is None:
            assert isinstance(recorded.event, OrderPlaced)
            decision = self.decide.start(recorded.event)
        else:
            decision = self.decide.handle(found.state, recorded.event, utc_now())
        meta = recorded.metadata
        cause = Metadata(
            message_id=meta.message_id, correlation_id=meta.correlation_id, actor=ACTOR
        )
        issued, results = self._issue(conn, decision.commands, cause, meta.message_id)
        store.save(
            conn,
            decision.state,
            recorded.checkpoint,
            store.moment(recorded.type, decision.state.step, decision.note, results),
            correlation_id=found.correlation_id if found else meta.correlation_id,
            created=found is None,
        )
        deadline = decision.state.deadline
        if found is not None and found.state.deadline == deadline:
            deadline = None  # scheduled already
        return Outcome(issued, order_id, deadline, acted=True)

    def _time_out(self, conn: Connection, order_id: str) -> Outcome:
        with conn.begin():
            found = store.load(conn, order_id)
            if found is None:
                return Outcome()
            decision = self.decide.time_out(found.state, utc_now())
            if not decision.commands:
                return Outcome()
            if store.has_unhandled(conn, order_id, found.last, PAYMENT_RESULTS):
                return Outcome()  # paid (or refused) in time; the saga has not caught up yet
            cause = Metadata(
                message_id=deadline_id(order_id),
                correlation_id=found.correlation_id or order_id,
                actor=ACTOR,
            )
            issued, results = self._issue(conn, decision.commands, cause, cause.message_id)
            moment = store.moment("payment deadline", decision.state.step, decision.note, results)
            store.save(
                conn, decision.state, found.last, moment, correlation_id=found.correlation_id
            )
        return Outcome(issued, order_id, acted=True)

    def _issue(
        self, conn: Connection, commands: Sequence[Command], cause: Metadata, cause_id: str
    ) -> tuple[list[RecordedEvent], list[str]]:
        issued: list[RecordedEvent] = []
        results = []
        for index, command in enumerate(commands):
            metadata = cause.caused(command_id(cause_id, index))
            result, recorded = self.bus.dispatch_in(conn, command, metadata)
            issued += recorded
            outcome = "ok" if result.ok else f"refused: {getattr(result, 'code', '')}"
            results.append(f"{type(command).__name__} {outcome}")
            if not result.ok:
                log.warning(
                    "saga command refused",
                    extra={"order_id": getattr(command, "order_id", None), "result": outcome},
                )
        return issued, results
