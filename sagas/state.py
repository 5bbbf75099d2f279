"""Where one order's fulfillment stands: the saga's state, as the decisions see it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kernel.money import Money


class Progress(StrEnum):
    """How the saga as a whole stands."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"  # confirmed; it still commits shipped stock, restocks and
    # refunds returns: a completed saga goes on reacting to the order's events
    COMPENSATED = "compensated"  # cancelled, and whatever was done made good


class Step(StrEnum):
    """What the saga is doing, or waiting for."""

    RESERVING = "reserving"
    PAYING = "paying"
    CONFIRMING = "confirming"
    AWAITING_SHIPMENT = "awaiting_shipment"
    PARTIALLY_SHIPPED = "partially_shipped"  # some units left; the rest still to ship
    SHIPPED = "shipped"  # where it rests (returns, later, need no step of their own)
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


class StockHeld(StrEnum):
    """What became of the order's stock reservation."""

    REQUESTED = "requested"
    RESERVED = "reserved"
    FAILED = "failed"
    RELEASED = "released"
    COMMITTED = "committed"


class Charge(StrEnum):
    """What became of the order's payment."""

    NOT_STARTED = "not_started"
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDING = "refunding"
    PARTLY_REFUNDED = "partially_refunded"  # some given back (a return's refund)
    REFUNDED = "refunded"  # all given back


CANCELLED_STEPS = frozenset({Step.CANCELLING, Step.CANCELLED})


@dataclass(frozen=True, slots=True)
class FulfillmentState:
    order_id: str
    step: Step
    state: Progress
    lines: tuple[tuple[str, int], ...]
    total: Money
    payment_token: str
    reservation: StockHeld = StockHeld.REQUESTED
    payment: Charge = Charge.NOT_STARTED
    deadline: datetime | None = None
    timed_out: bool = False
    customer_id: str = ""  # who pays (sagas started before it was kept: unknown)
    compensation: str = ""  # why it was cancelled and compensated (empty: it was not)
    coupon_code: str | None = None  # the coupon the order redeemed, given back if cancelled
