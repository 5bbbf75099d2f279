"""Order fulfillment: the process manager that takes an order from placed to shipped.

    OrderPlaced                -> ReserveInventory
    InventoryReserved          -> ProcessPayment (and a payment deadline; the charge itself
                                  is a provider call a payments job makes afterwards)
    InventoryReservationFailed -> CancelOrder (out of stock, naming the SKUs)
    PaymentSucceeded           -> ConfirmOrder
    PaymentFailed              -> ReleaseInventory + CancelOrder (the gateway's reason)
    deadline, no payment yet   -> ReleaseInventory + CancelOrder ("payment timed out")
                                  + AbandonPayment (no charge after this one is made)
    PaymentSucceeded too late  -> RefundPayment
    OrderCancelled after paid  -> RefundPayment + ReleaseInventory
    OrderCancelled, coupon used-> ReleaseCouponRedemption (besides the above)
    OrderCancelled while paying-> ReleaseInventory + AbandonPayment
    PaymentRefunded in full,   -> CancelOrder (then ReleaseInventory, as above); a partial
      unshipped                   refund (a return's) cancels nothing
    ShipmentDispatched         -> CommitReservation of the shipment's lines
    OrderShipped               -> CommitReservation of what is left (nothing, once every
                                  shipment committed its own; all, for orders shipped before
                                  shipments were recorded)
    ReturnInspected            -> ReturnStock of the accepted units + RefundPayment of what
                                  they were charged (named by the return)

The saga completes when the order is confirmed and goes on reacting after: shipments and
returns come later.

`OrderFulfillment` decides (pure: state + event -> new state + commands); the
`OrderFulfillmentSaga` subscriber runs it on the log, partition by partition: a
bounded batch of a partition's events per transaction, holding the sagas' states, the
commands' events, the partition's checkpoint and its lease's renewal. The bound keeps
the stream locks the commands take (a busy SKU's) short. Command ids derive from
(saga, event), so a redelivered event issues nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection, Engine

from inventory.commands import (
    CommitReservation,
    ReleaseInventory,
    ReservationLine,
    ReserveInventory,
    ReturnStock,
)
from inventory.events import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ReservationCommitted,
)
from kernel.command_bus import CommandBus, Transaction
from kernel.driver import autocommit
from kernel.errors import CheckpointMoved
from kernel.event_store import Checkpoint, EventStore, RecordedEvent
from kernel.handlers import EventHandlers
from kernel.leases import Lease
from kernel.messages import Command, Event, Metadata, utc_now
from kernel.subscriptions import read_checkpoint, store_checkpoint
from kernel.tracing import NO_TRACING, Attributes, Tracing
from orders.commands import CancelOrder, ConfirmOrder
from orders.events import (
    CancelledBy,
    ItemLine,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderShipped,
    ReturnInspected,
    ShipmentDispatched,
)
from payments.commands import AbandonPayment, ProcessPayment, RefundPayment
from payments.events import (
    PaymentFailed,
    PaymentPending,
    PaymentRefunded,
    PaymentRequested,
    PaymentSucceeded,
)
from pricing.commands import ReleaseCouponRedemption
from sagas import store
from sagas.state import (
    CANCELLED_STEPS,
    Charge,
    FulfillmentState,
    Progress,
    Step,
    StockHeld,
)

log = logging.getLogger("sagas.order_fulfillment")

NAME = store.SUBSCRIPTION
ACTOR = f"saga:{NAME}"
_IDS = uuid.UUID("3c0f9d7e-52b1-4f7a-8f61-0d4b5e2c9a18")
PAYMENT_RESULTS = (PaymentSucceeded.__name__, PaymentFailed.__name__)
STOCK_MOVING = frozenset(
    event.__name__
    for event in (
        OrderPlaced,
        PaymentFailed,
        OrderCancelled,
        ShipmentDispatched,
        OrderShipped,
        ReturnInspected,
    )
)
"""Events the saga may answer with a command that reserves, releases or commits stock
(a reservation that arrives after a cancellation is released too, but rarely: its stock
lock is taken unsorted, and a deadlock, if one follows, is retried)."""
MOVING_ORDERS_PER_BATCH = 4


def command_id(cause_id: str, index: int) -> str:
    """The id of the `index`-th command the saga issues for the event (or deadline) `cause_id`."""
    return str(uuid.uuid5(_IDS, f"{cause_id}/{index}"))


def deadline_id(order_id: str) -> str:
    """The message id standing for an order's payment deadline, the cause of its commands."""
    return str(uuid.uuid5(_IDS, f"deadline/{order_id}"))


class NothingToRetry(Exception):
    """The saga's step waits on nothing it can issue again (or it has ended)."""


@runtime_checkable
class AboutAnOrder(Protocol):
    """Every event the saga subscribes to names its order."""

    @property
    def order_id(self) -> str: ...


@dataclass
class Decision:
    state: FulfillmentState
    commands: list[Command] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True, slots=True)
class Moment:
    """When an event is handled, and the saga's rule of time."""

    now: datetime
    payment_timeout: timedelta

    @property
    def payment_deadline(self) -> datetime:
        return self.now + self.payment_timeout


reactions: EventHandlers[[FulfillmentState, Moment], Decision] = EventHandlers()
"""The saga's reaction to each event it subscribes to after OrderPlaced (which starts it)."""


@reactions.on(InventoryReserved)
def charge_reserved_order(
    event: InventoryReserved, state: FulfillmentState, at: Moment
) -> Decision:
    if state.step is Step.RESERVING:
        paying = replace(
            state, step=Step.PAYING, reservation=StockHeld.RESERVED, deadline=at.payment_deadline
        )
        charge = ProcessPayment(state.order_id, state.total, state.payment_token, state.customer_id)
        return Decision(paying, [charge], "stock reserved, charging")
    if state.step in CANCELLED_STEPS:
        # The order was cancelled while stock was being reserved: give it back.
        held = replace(state, reservation=StockHeld.RESERVED)
        return Decision(held, [ReleaseInventory(state.order_id)], "releasing late reservation")
    return Decision(state)


@reactions.on(InventoryReservationFailed)
def cancel_out_of_stock(
    event: InventoryReservationFailed, state: FulfillmentState, at: Moment
) -> Decision:
    if state.step is not Step.RESERVING:
        return Decision(state)
    skus = ", ".join(shortage.sku for shortage in event.shortages)
    cancel = CancelOrder(state.order_id, f"out of stock: {skus}", CancelledBy.SYSTEM)
    failed = replace(
        state, step=Step.CANCELLING, reservation=StockHeld.FAILED,
        compensation=f"out of stock: {skus}",
    )  # fmt: skip
    return Decision(failed, [cancel], f"out of stock: {skus}")


@reactions.on(PaymentPending)
def note_pending_payment(event: PaymentPending, state: FulfillmentState, at: Moment) -> Decision:
    return Decision(replace(state, payment=Charge.PENDING), [], "payment pending")


@reactions.on(PaymentSucceeded)
def confirm_paid_order(event: PaymentSucceeded, state: FulfillmentState, at: Moment) -> Decision:
    if state.step is Step.PAYING:
        confirming = replace(state, step=Step.CONFIRMING, payment=Charge.SUCCEEDED, deadline=None)
        return Decision(confirming, [ConfirmOrder(state.order_id)], "paid, confirming")
    if state.step in CANCELLED_STEPS:
        refund = RefundPayment(state.order_id, "payment arrived after the order was cancelled")
        late = replace(state, payment=Charge.REFUNDING)
        return Decision(late, [refund], "late payment, refunding")
    return Decision(state)


@reactions.on(PaymentFailed)
def compensate_failed_payment(
    event: PaymentFailed, state: FulfillmentState, at: Moment
) -> Decision:
    if state.step is not Step.PAYING:
        return Decision(replace(state, payment=Charge.FAILED), [], "payment failed late")
    why = f"payment failed: {event.reason}"
    failed = replace(
        state, step=Step.CANCELLING, payment=Charge.FAILED, deadline=None, compensation=why
    )
    cancel = CancelOrder(state.order_id, why, CancelledBy.SYSTEM)
    return Decision(failed, [ReleaseInventory(state.order_id), cancel], "payment failed")


@reactions.on(OrderConfirmed)
def await_shipment(event: OrderConfirmed, state: FulfillmentState, at: Moment) -> Decision:
    if state.payment is Charge.REFUNDED:
        # Refunded (an admin refund) before its confirmation was handled: as for a refund
        # while it awaits shipment, it must not ship and its stock goes back on sale.
        return _cancel_refunded(state)
    return Decision(replace(state, step=Step.AWAITING_SHIPMENT, state=Progress.COMPLETED))


@reactions.on(OrderCancelled)
def compensate_cancelled_order(
    event: OrderCancelled, state: FulfillmentState, at: Moment
) -> Decision:
    commands: list[Command] = []
    if state.payment is Charge.SUCCEEDED:
        commands.append(RefundPayment(state.order_id, "order cancelled"))
    if state.reservation is StockHeld.RESERVED:
        commands.append(ReleaseInventory(state.order_id))
    if state.step is Step.PAYING:  # cancelled while the charge is under way: stop it
        commands.append(AbandonPayment(state.order_id, "order cancelled"))
    if state.coupon_code is not None:  # the use the order held goes back to the coupon
        commands.append(ReleaseCouponRedemption(state.coupon_code, state.order_id))
    why = state.compensation or f"cancelled by {event.cancelled_by}: {event.reason}"
    done = replace(
        state, step=Step.CANCELLED, state=Progress.COMPENSATED, deadline=None, compensation=why
    )
    return Decision(done, commands, "cancelled" + (", compensating" if commands else ""))


@reactions.on(ShipmentDispatched)
def commit_shipment(event: ShipmentDispatched, state: FulfillmentState, at: Moment) -> Decision:
    # Stock that left is committed whatever the saga thought: the warehouse shipped it.
    commit = CommitReservation(state.order_id, _reservation_lines(event.lines), event.shipment_id)
    shipping = state.step in (Step.AWAITING_SHIPMENT, Step.PARTIALLY_SHIPPED)
    step = Step.PARTIALLY_SHIPPED if shipping else state.step
    return Decision(replace(state, step=step), [commit], f"shipment {event.shipment_id} left")


@reactions.on(OrderShipped)
def commit_shipped_stock(event: OrderShipped, state: FulfillmentState, at: Moment) -> Decision:
    # Whatever no shipment committed: nothing once each shipment committed its own, all of
    # it for an order shipped before shipments were recorded.
    shipped = replace(state, step=Step.SHIPPED)
    return Decision(shipped, [CommitReservation(state.order_id)], "shipped")


@reactions.on(ReturnInspected)
def restock_and_refund_return(
    event: ReturnInspected, state: FulfillmentState, at: Moment
) -> Decision:
    commands: list[Command] = []
    if event.accepted:
        lines = _reservation_lines(event.accepted)
        commands.append(ReturnStock(state.order_id, event.return_id, lines))
    if event.refund.amount > 0:
        commands.append(
            RefundPayment(
                state.order_id, f"return {event.return_id}", event.refund, event.return_id
            )
        )
    units = sum(line.quantity for line in event.accepted)
    note = f"return {event.return_id} inspected: {units} units accepted, {event.refund} back"
    return Decision(state, commands, note)


def _reservation_lines(lines: Sequence[ItemLine]) -> tuple[ReservationLine, ...]:
    return tuple(ReservationLine(line.sku, line.quantity) for line in lines)


@reactions.on(InventoryReleased)
def note_release(event: InventoryReleased, state: FulfillmentState, at: Moment) -> Decision:
    return Decision(replace(state, reservation=StockHeld.RELEASED))


@reactions.on(ReservationCommitted)
def note_commit(event: ReservationCommitted, state: FulfillmentState, at: Moment) -> Decision:
    if not event.complete:  # a shipment's part: the rest stays reserved
        return Decision(state)
    return Decision(replace(state, reservation=StockHeld.COMMITTED))


@reactions.on(PaymentRefunded)
def cancel_refunded_order(event: PaymentRefunded, state: FulfillmentState, at: Moment) -> Decision:
    if not event.fully_refunded:
        # Part of the payment went back (a return's refund): the order stands.
        partly = replace(state, payment=Charge.PARTLY_REFUNDED)
        return Decision(partly, [], f"refunded {event.amount} ({event.reason})")
    refunded = replace(state, payment=Charge.REFUNDED)
    if state.step is Step.PARTIALLY_SHIPPED and state.reservation is StockHeld.RESERVED:
        # Refunded in full with units not yet shipped: no more of it ships (ShipOrderLines
        # refuses a refunded order), and what shipped cannot be cancelled; the units left
        # go back on sale, and the saga rests.
        why = "payment refunded in full: the units not shipped are released"
        done = replace(refunded, step=Step.SHIPPED, compensation=why)
        return Decision(done, [ReleaseInventory(state.order_id)], why)
    if state.step is not Step.AWAITING_SHIPMENT:
        return Decision(refunded)
    # Refunded before it shipped (an admin refund): nobody paid for it, so it must not
    # ship (ShipOrder refuses it meanwhile) and its stock goes back on sale.
    return _cancel_refunded(refunded)


def _cancel_refunded(state: FulfillmentState) -> Decision:
    cancel = CancelOrder(state.order_id, "payment refunded", CancelledBy.SYSTEM)
    cancelling = replace(state, step=Step.CANCELLING, compensation="payment refunded")
    return Decision(cancelling, [cancel], "refunded, cancelling")


class OrderFulfillment:
    """The saga's decisions, free of storage: given events, then commands."""

    def __init__(self, payment_timeout: timedelta) -> None:
        self.payment_timeout = payment_timeout

    def start(self, event: OrderPlaced) -> Decision:
        lines = tuple((line.sku, line.quantity) for line in event.lines)
        state = FulfillmentState(
            event.order_id, Step.RESERVING, Progress.IN_PROGRESS, lines, event.total,
            event.payment_token, customer_id=event.customer_id, coupon_code=event.coupon_code,
        )  # fmt: skip
        reserve = ReserveInventory(
            event.order_id, tuple(ReservationLine(sku, qty) for sku, qty in lines)
        )
        return Decision(state, [reserve], "reserving stock")

    def handle(self, state: FulfillmentState, event: Event, now: datetime) -> Decision:
        decision = reactions.handle(event, state, Moment(now, self.payment_timeout))
        return decision or Decision(state)

    def retry(self, state: FulfillmentState) -> Decision:
        """An operator asks the saga to issue its current step's commands again (their
        earlier ones were lost or refused while a fault lasted); no commands when the
        step waits on nothing the saga can ask again."""
        order_id = state.order_id
        commands: list[Command] = []
        if state.step is Step.RESERVING:
            lines = tuple(ReservationLine(sku, qty) for sku, qty in state.lines)
            commands.append(ReserveInventory(order_id, lines))
        elif state.step is Step.PAYING and state.payment is Charge.NOT_STARTED:
            commands.append(
                ProcessPayment(order_id, state.total, state.payment_token, state.customer_id)
            )
        elif state.step is Step.CONFIRMING:
            commands.append(ConfirmOrder(order_id))
        elif state.step is Step.CANCELLING:
            if state.reservation is StockHeld.RESERVED:
                commands.append(ReleaseInventory(order_id))
            why = state.compensation or "cancelled"
            commands.append(CancelOrder(order_id, why, CancelledBy.SYSTEM))
        return Decision(state, commands, f"operator retried {state.step}")

    def time_out(self, state: FulfillmentState, now: datetime) -> Decision:
        """No payment result by the deadline: compensate as for a failed payment."""
        if state.step is not Step.PAYING or state.deadline is None or state.deadline > now:
            return Decision(state)
        timed_out = replace(
            state, step=Step.CANCELLING, deadline=None, timed_out=True,
            compensation="payment timed out",
        )  # fmt: skip
        cancel = CancelOrder(state.order_id, "payment timed out", CancelledBy.SYSTEM)
        abandon = AbandonPayment(state.order_id, "payment timed out")
        commands: list[Command] = [ReleaseInventory(state.order_id), cancel, abandon]
        return Decision(timed_out, commands, "payment timed out")


class OrderFulfillmentSaga:
    """Runs the saga on the log as a subscriber, and on its deadlines."""

    name = NAME
    event_types = reactions.types | {OrderPlaced.__name__}

    def __init__(
        self,
        engine: Engine,
        bus: CommandBus,
        event_store: EventStore,
        payment_timeout: timedelta,
        schedule_deadline: Callable[[str, datetime], None] = lambda order_id, at: None,
        *,
        lock_stock: Callable[[Connection, Collection[str]], None] = lambda conn, skus: None,
        batch_size: int = 20,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.event_store = event_store
        self.decide = OrderFulfillment(payment_timeout)
        self.schedule_deadline = schedule_deadline
        self.lock_stock = lock_stock
        self.batch_size = batch_size
        self.tracing = tracing

    def checkpoint(self, conn: Connection, partition: int = 0) -> Checkpoint:
        with autocommit(conn):
            return read_checkpoint(conn, self.name, partition)

    def apply(
        self,
        conn: Connection,
        events: Sequence[RecordedEvent],
        lease: Lease,
        after: Checkpoint | None = None,
    ) -> None:
        """Batches of at most `batch_size` events, and of events about at most
        MOVING_ORDERS_PER_BATCH orders whose stock may move, per transaction (each batch
        is atomic, the whole is not)."""
        for batch in self._batches(events):
            self.bus.transaction(partial(self._handle, batch, lease, after), conn=conn)
            after = batch[-1].checkpoint

    def _batches(self, events: Sequence[RecordedEvent]) -> Iterator[Sequence[RecordedEvent]]:
        """The stock locks a batch takes are held to its end, and other partitions' batches
        wanting one of those SKUs wait: few such orders per batch keep that wait short."""
        start, moving = 0, set[str]()
        for index, recorded in enumerate(events):
            if recorded.type in STOCK_MOVING:
                event = recorded.event
                assert isinstance(event, AboutAnOrder), f"{recorded.type} names no order"
                order_id = event.order_id
                if order_id not in moving and len(moving) == MOVING_ORDERS_PER_BATCH:
                    yield events[start:index]
                    start, moving = index, set()
                moving.add(order_id)
            if index + 1 - start == self.batch_size:
                yield events[start : index + 1]
                start, moving = index + 1, set()
        if start < len(events):
            yield events[start:]

    def time_out(self, order_id: str) -> bool:
        """Compensate one order whose payment deadline passed; False if nothing was due
        (told by one look, without a transaction, in the usual case: paid meanwhile)."""
        with self.engine.connect() as conn:
            if not store.is_overdue(conn, order_id, utc_now()):
                return False
        return self.bus.transaction(partial(self._time_out, order_id))

    def retry_step(self, order_id: str, actor: str, action_id: str) -> list[str]:
        """Issue the saga's current step's commands again for an operator (`action_id`
        names the request: the same id issues nothing twice); what each command did.
        Raises LookupError if there is no such saga, NothingToRetry if its step waits
        on nothing the saga can ask again."""
        return self.bus.transaction(partial(self._retry_step, order_id, actor, action_id))

    def _retry_step(
        self, order_id: str, actor: str, action_id: str, done: Transaction
    ) -> list[str]:
        found = store.load(done.conn, order_id)
        if found is None:
            raise LookupError(f"no saga for order {order_id}")
        decision = self.decide.retry(found.state)
        if not decision.commands:
            raise NothingToRetry(f"the saga is {found.state.step}: nothing to issue again")
        cause = Metadata(
            message_id=action_id, correlation_id=found.correlation_id or order_id, actor=actor
        )
        results = self._issue(done, decision.commands, cause, action_id)
        moment = store.moment(f"retry by {actor}", found.state.step, decision.note, results)
        store.save(
            done.conn, found.state, found.last, moment,
            correlation_id=found.correlation_id, step_again=True,
        )  # fmt: skip
        return results

    def overdue(self, limit: int = 100) -> list[str]:
        with self.engine.connect() as conn:
            return store.overdue(conn, utc_now(), limit)

    def _handle(
        self,
        batch: Sequence[RecordedEvent],
        lease: Lease,
        after: Checkpoint | None,
        done: Transaction,
    ) -> None:
        """One transaction for the batch. Orders whose events may move stock go last, after
        their SKUs' stream locks were taken at once, in sorted order: each command would
        lock its own SKUs in order, but several in one transaction would interleave them,
        and two partitions' batches could deadlock. Taken late, they are held briefly."""
        current = read_checkpoint(done.conn, self.name, lease.partition, for_update=True)
        if after is not None and current != after:
            raise CheckpointMoved(f"{self.name}#{lease.partition} is not at {after.token()}")
        fresh = [recorded for recorded in batch if recorded.checkpoint > current]
        self._react_to(fresh, done)
        if fresh:
            store_checkpoint(done.conn, self.name, lease.partition, fresh[-1].checkpoint)
        lease.confirm(done.conn)

    def apply_parked(
        self,
        conn: Connection,
        events: Sequence[RecordedEvent],
        lease: Lease,
        settle: Callable[[Connection], object],
    ) -> None:
        """A parked order's events, in the batches `apply` would make; the last settles.
        A retry after a crash mid-way reacts to nothing twice (see `_react`)."""
        batches = list(self._batches(events)) or [[]]  # none: still settle
        for index, batch in enumerate(batches):
            last = index == len(batches) - 1
            self.bus.transaction(
                partial(self._handle_parked, batch, lease, settle if last else None), conn=conn
            )

    def _handle_parked(
        self,
        batch: Sequence[RecordedEvent],
        lease: Lease,
        settle: Callable[[Connection], object] | None,
        done: Transaction,
    ) -> None:
        self._react_to(batch, done)
        if settle is not None:
            settle(done.conn)
        lease.confirm(done.conn)

    def _react_to(self, fresh: Sequence[RecordedEvent], done: Transaction) -> None:
        by_order: dict[str, list[RecordedEvent]] = {}
        for recorded in fresh:
            if recorded.type in self.event_types:
                event = recorded.event
                assert isinstance(event, AboutAnOrder), f"{recorded.type} names no order"
                by_order.setdefault(event.order_id, []).append(recorded)
        moving = {
            o for o, events in by_order.items() if any(e.type in STOCK_MOVING for e in events)
        }
        for order_id, events in by_order.items():
            if order_id not in moving:
                for recorded in events:
                    self._react(recorded, done)
        if moving:
            self.lock_stock(done.conn, self._skus(done.conn, {o: by_order[o] for o in moving}))
            for order_id in moving:
                for recorded in by_order[order_id]:
                    self._react(recorded, done)

    def _skus(self, conn: Connection, orders: dict[str, list[RecordedEvent]]) -> set[str]:
        """The SKUs of the orders, from their OrderPlaced or their sagas' state, whose rows
        are locked now: before any stock, as the deadline job locks them."""
        skus = store.lock_for_lines(conn, sorted(orders))
        for events in orders.values():
            for recorded in events:
                if isinstance(recorded.event, OrderPlaced):
                    skus.update(line.sku for line in recorded.event.lines)
        return skus

    def _react(self, recorded: RecordedEvent, done: Transaction) -> None:
        event = recorded.event
        assert isinstance(event, AboutAnOrder), f"{recorded.type} names no order"
        order_id = event.order_id
        found = store.load(done.conn, order_id)
        if found is None and not isinstance(event, OrderPlaced):
            return  # an order this saga never started
        if found is not None and found.last >= recorded.checkpoint:
            return  # replayed from an earlier checkpoint: handled already
        meta = recorded.metadata
        # The step joins the event's trace; the commands it issues are its children.
        step: Attributes = {
            "shop.order_id": order_id,
            "shop.event.type": recorded.type,
            "shop.event.id": meta.message_id,
            "shop.event.position": recorded.position,
        }
        with self.tracing.following(meta, f"{self.name} {recorded.type}", step):
            if found is None:
                assert isinstance(event, OrderPlaced)
                decision = self.decide.start(event)
            else:
                decision = self.decide.handle(found.state, event, utc_now())
            cause = Metadata(
                message_id=meta.message_id, correlation_id=meta.correlation_id, actor=ACTOR
            )
            results = self._issue(done, decision.commands, cause, meta.message_id)
            store.save(
                done.conn,
                decision.state,
                recorded.checkpoint,
                store.moment(recorded.type, decision.state.step, decision.note, results),
                correlation_id=found.correlation_id if found else meta.correlation_id,
                created=found is None,
            )
        deadline = decision.state.deadline
        changed = found is None or found.state.deadline != deadline
        if deadline is not None and changed:
            done.after_commit(partial(self.schedule_deadline, order_id, deadline))

    def _time_out(self, order_id: str, done: Transaction) -> bool:
        found = store.load(done.conn, order_id)
        if found is None:
            return False
        decision = self.decide.time_out(found.state, utc_now())
        if not decision.commands:
            return False
        answered = self.event_store.about(
            done.conn, order_id, after=found.last, types=PAYMENT_RESULTS
        )
        if answered:
            return False  # paid (or refused) in time; the saga has not caught up yet
        cause = Metadata(
            message_id=deadline_id(order_id),
            correlation_id=found.correlation_id or order_id,
            actor=ACTOR,
        )
        with self.tracing.following(
            self._payment_request(done.conn, order_id),
            f"{self.name} payment deadline",
            {"shop.order_id": order_id},
        ):
            results = self._issue(done, decision.commands, cause, cause.message_id)
            moment = store.moment("payment deadline", decision.state.step, decision.note, results)
            store.save(
                done.conn, decision.state, found.last, moment, correlation_id=found.correlation_id
            )
        return True

    def _payment_request(self, conn: Connection, order_id: str) -> Metadata | None:
        """The metadata of the order's last PaymentRequested, whose deadline passed: the
        compensation joins the order's trace as that request's consequence (read only
        while tracing is on)."""
        if not self.tracing.enabled:
            return None
        asked = self.event_store.about(conn, order_id, types=(PaymentRequested.__name__,))
        return asked[-1].metadata if asked else None

    def _issue(
        self, done: Transaction, commands: Sequence[Command], cause: Metadata, cause_id: str
    ) -> list[str]:
        results = []
        for index, command in enumerate(commands):
            result = done.dispatch(command, cause.caused(command_id(cause_id, index)))
            outcome = "ok" if result.ok else f"refused: {getattr(result, 'code', '')}"
            results.append(f"{type(command).__name__} {outcome}")
            if not result.ok:
                log.warning(
                    "saga command refused",
                    extra={"order_id": getattr(command, "order_id", None), "result": outcome},
                )
        return results
