"""Order detail: one denormalised document per order, with its status timeline."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from inventory.events import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ReservationCommitted,
)
from kernel.codec import to_data
from kernel.event_store import RecordedEvent
from kernel.write_batch import WriteBatch
from orders.events import OrderCancelled, OrderConfirmed, OrderPlaced, OrderShipped
from payments.events import PaymentFailed, PaymentPending, PaymentRefunded, PaymentSucceeded
from projections.handlers import Handlers
from projections.projection import Mode, PostgresHandler, PostgresProjection

handlers: Handlers[PostgresHandler] = Handlers()

_INSERT = text(
    """
    INSERT INTO order_details (generation, order_id, customer_id, status, placed_at,
                               updated_at, document)
    VALUES (:gen, :order_id, :customer_id, 'pending', :at, :at, CAST(:doc AS jsonb))
    ON CONFLICT (generation, order_id) DO NOTHING
    """
)
_CHANGE = text(
    """
    UPDATE order_details
    SET document = (document || CAST(:patch AS jsonb)) || jsonb_build_object(
            'timeline', document -> 'timeline' || CAST(:moment AS jsonb)),
        status = coalesce(:status, status),
        updated_at = :at
    WHERE generation = :gen AND order_id = :order_id
    """
)


@handlers.on(OrderPlaced)
def placed(writes: WriteBatch, gen: int, event: OrderPlaced, recorded: RecordedEvent) -> None:
    at = recorded.metadata.occurred_at
    placed = to_data(event)
    document = {
        "order_id": event.order_id,
        "customer_id": event.customer_id,
        "status": "pending",
        "lines": placed["lines"],
        "subtotal": placed["subtotal"],
        "shipping": placed["shipping"],
        "total": placed["total"],
        "shipping_address": placed["shipping_address"],
        "item_count": sum(line.quantity for line in event.lines),
        "placed_at": at.isoformat(),
        "payment": {"status": "not_started"},
        "reservation": {"status": "not_started"},
        "tracking_number": None,
        "cancellation": None,
        "timeline": [_moment("placed", "pending", recorded)],
    }
    writes.execute(
        _INSERT,
        {
            "gen": gen,
            "order_id": event.order_id,
            "customer_id": event.customer_id,
            "at": at,
            "doc": json.dumps(document),
        },
    )


@handlers.on(OrderConfirmed)
def confirmed(writes: WriteBatch, gen: int, event: OrderConfirmed, recorded: RecordedEvent) -> None:
    _change(writes, gen, recorded, status="confirmed", moment="confirmed")


@handlers.on(OrderCancelled)
def cancelled(writes: WriteBatch, gen: int, event: OrderCancelled, recorded: RecordedEvent) -> None:
    cancellation = {"reason": event.reason, "cancelled_by": event.cancelled_by}
    _change(
        writes, gen, recorded, status="cancelled", moment="cancelled", cancellation=cancellation
    )


@handlers.on(OrderShipped)
def shipped(writes: WriteBatch, gen: int, event: OrderShipped, recorded: RecordedEvent) -> None:
    _change(
        writes,
        gen,
        recorded,
        status="shipped",
        moment="shipped",
        tracking_number=event.tracking_number,
    )


@handlers.on(InventoryReserved)
def reserved(
    writes: WriteBatch, gen: int, event: InventoryReserved, recorded: RecordedEvent
) -> None:
    _change(writes, gen, recorded, moment="inventory reserved", reservation={"status": "reserved"})


@handlers.on(InventoryReservationFailed)
def reservation_failed(
    writes: WriteBatch, gen: int, event: InventoryReservationFailed, recorded: RecordedEvent
) -> None:
    shortages = [to_data(shortage) for shortage in event.shortages]
    _change(
        writes,
        gen,
        recorded,
        moment="inventory short",
        reservation={"status": "failed", "shortages": shortages},
    )


@handlers.on(InventoryReleased)
def released(
    writes: WriteBatch, gen: int, event: InventoryReleased, recorded: RecordedEvent
) -> None:
    _change(writes, gen, recorded, moment="inventory released", reservation={"status": "released"})


@handlers.on(ReservationCommitted)
def committed(
    writes: WriteBatch, gen: int, event: ReservationCommitted, recorded: RecordedEvent
) -> None:
    _change(
        writes, gen, recorded, moment="inventory committed", reservation={"status": "committed"}
    )


@handlers.on(PaymentPending)
def payment_pending(
    writes: WriteBatch, gen: int, event: PaymentPending, recorded: RecordedEvent
) -> None:
    payment = {
        "status": "pending",
        "reference": event.provider_reference,
        "amount": to_data(event.amount),
    }
    _change(writes, gen, recorded, moment="payment pending", payment=payment)


@handlers.on(PaymentSucceeded)
def paid(writes: WriteBatch, gen: int, event: PaymentSucceeded, recorded: RecordedEvent) -> None:
    payment = {
        "status": "succeeded",
        "reference": event.provider_reference,
        "amount": to_data(event.amount),
    }
    _change(writes, gen, recorded, moment="payment succeeded", payment=payment)


@handlers.on(PaymentFailed)
def payment_failed(
    writes: WriteBatch, gen: int, event: PaymentFailed, recorded: RecordedEvent
) -> None:
    payment = {"status": "failed", "reason": event.reason, "amount": to_data(event.amount)}
    _change(writes, gen, recorded, moment="payment failed", payment=payment)


@handlers.on(PaymentRefunded)
def refunded(writes: WriteBatch, gen: int, event: PaymentRefunded, recorded: RecordedEvent) -> None:
    payment = {
        "status": "refunded",
        "refund_reference": event.provider_reference,
        "refund_reason": event.reason,
        "amount": to_data(event.amount),
    }
    _change(writes, gen, recorded, moment="payment refunded", payment=payment)


def _moment(what: str, status: str | None, recorded: RecordedEvent) -> dict[str, Any]:
    return {
        "what": what,
        "status": status,
        "event": recorded.type,
        "at": recorded.metadata.occurred_at.isoformat(),
    }


def _change(
    writes: WriteBatch,
    gen: int,
    recorded: RecordedEvent,
    *,
    moment: str,
    status: str | None = None,
    **fields: Any,
) -> None:
    """Merge `fields` (and the status) into the document and add a timeline moment."""
    patch: dict[str, Any] = dict(fields)
    if status is not None:
        patch["status"] = status
    writes.execute(
        _CHANGE,
        {
            "gen": gen,
            "order_id": recorded.data["order_id"],
            "patch": json.dumps(patch),
            "moment": json.dumps([_moment(moment, status, recorded)]),
            "status": status,
            "at": recorded.metadata.occurred_at,
        },
    )


def projection(mode: Mode = "async") -> PostgresProjection:
    return PostgresProjection("order_detail", ["order_details"], handlers, mode)
