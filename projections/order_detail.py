"""Order detail: one denormalised document per order, with its status timeline."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

from inventory.events import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ReservationCommitted,
)
from kernel.codec import to_data
from kernel.event_store import RecordedEvent
from orders.events import OrderCancelled, OrderConfirmed, OrderPlaced, OrderShipped
from payments.events import PaymentFailed, PaymentPending, PaymentRefunded, PaymentSucceeded
from projections.handlers import Handlers
from projections.projection import Mode, PostgresHandler, PostgresProjection

handlers: Handlers[PostgresHandler] = Handlers()


@handlers.on(OrderPlaced)
def placed(conn: Connection, gen: int, event: OrderPlaced, recorded: RecordedEvent) -> None:
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
    conn.execute(
        text(
            """
            INSERT INTO order_details (generation, order_id, customer_id, status, placed_at,
                                       updated_at, document)
            VALUES (:gen, :order_id, :customer_id, 'pending', :at, :at, CAST(:doc AS jsonb))
            ON CONFLICT (generation, order_id) DO NOTHING
            """
        ),
        {
            "gen": gen,
            "order_id": event.order_id,
            "customer_id": event.customer_id,
            "at": at,
            "doc": json.dumps(document),
        },
    )


@handlers.on(OrderConfirmed)
def confirmed(conn: Connection, gen: int, event: OrderConfirmed, recorded: RecordedEvent) -> None:
    _change(conn, gen, recorded, status="confirmed", moment="confirmed")


@handlers.on(OrderCancelled)
def cancelled(conn: Connection, gen: int, event: OrderCancelled, recorded: RecordedEvent) -> None:
    cancellation = {"reason": event.reason, "cancelled_by": event.cancelled_by}
    _change(conn, gen, recorded, status="cancelled", moment="cancelled", cancellation=cancellation)


@handlers.on(OrderShipped)
def shipped(conn: Connection, gen: int, event: OrderShipped, recorded: RecordedEvent) -> None:
    _change(
        conn,
        gen,
        recorded,
        status="shipped",
        moment="shipped",
        tracking_number=event.tracking_number,
    )


@handlers.on(InventoryReserved)
def reserved(conn: Connection, gen: int, event: InventoryReserved, recorded: RecordedEvent) -> None:
    _change(conn, gen, recorded, moment="inventory reserved", reservation={"status": "reserved"})


@handlers.on(InventoryReservationFailed)
def reservation_failed(
    conn: Connection, gen: int, event: InventoryReservationFailed, recorded: RecordedEvent
) -> None:
    shortages = [to_data(shortage) for shortage in event.shortages]
    _change(
        conn,
        gen,
        recorded,
        moment="inventory short",
        reservation={"status": "failed", "shortages": shortages},
    )


@handlers.on(InventoryReleased)
def released(conn: Connection, gen: int, event: InventoryReleased, recorded: RecordedEvent) -> None:
    _change(conn, gen, recorded, moment="inventory released", reservation={"status": "released"})


@handlers.on(ReservationCommitted)
def committed(
    conn: Connection, gen: int, event: ReservationCommitted, recorded: RecordedEvent
) -> None:
    _change(conn, gen, recorded, moment="inventory committed", reservation={"status": "committed"})


@handlers.on(PaymentPending)
def payment_pending(
    conn: Connection, gen: int, event: PaymentPending, recorded: RecordedEvent
) -> None:
    payment = {
        "status": "pending",
        "reference": event.provider_reference,
        "amount": to_data(event.amount),
    }
    _change(conn, gen, recorded, moment="payment pending", payment=payment)


@handlers.on(PaymentSucceeded)
def paid(conn: Connection, gen: int, event: PaymentSucceeded, recorded: RecordedEvent) -> None:
    payment = {
        "status": "succeeded",
        "reference": event.provider_reference,
        "amount": to_data(event.amount),
    }
    _change(conn, gen, recorded, moment="payment succeeded", payment=payment)


@handlers.on(PaymentFailed)
def payment_failed(
    conn: Connection, gen: int, event: PaymentFailed, recorded: RecordedEvent
) -> None:
    payment = {"status": "failed", "reason": event.reason, "amount": to_data(event.amount)}
    _change(conn, gen, recorded, moment="payment failed", payment=payment)


@handlers.on(PaymentRefunded)
def refunded(conn: Connection, gen: int, event: PaymentRefunded, recorded: RecordedEvent) -> None:
    payment = {
        "status": "refunded",
        "refund_reference": event.provider_reference,
        "refund_reason": event.reason,
        "amount": to_data(event.amount),
    }
    _change(conn, gen, recorded, moment="payment refunded", payment=payment)


def _moment(what: str, status: str | None, recorded: RecordedEvent) -> dict[str, Any]:
    return {
        "what": what,
        "status": status,
        "event": recorded.type,
        "at": recorded.metadata.occurred_at.isoformat(),
    }


def _change(
    conn: Connection,
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
    conn.execute(
        text(
            """
            UPDATE order_details
            SET document = (document || CAST(:patch AS jsonb)) || jsonb_build_object(
                    'timeline', document -> 'timeline' || CAST(:moment AS jsonb)),
                status = coalesce(:status, status),
                updated_at = :at
            WHERE generation = :gen AND order_id = :order_id
            """
        ),
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
