"""Order-fulfillment saga state in PostgreSQL, one row per order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from kernel import jsonb
from kernel.event_store import Checkpoint
from kernel.messages import utc_now
from kernel.money import Money
from sagas.state import Charge, FulfillmentState, Progress, Step, StockHeld


@dataclass(frozen=True, slots=True)
class Found:
    state: FulfillmentState
    last: Checkpoint  # the last event this saga handled
    correlation_id: str | None


def load(conn: Connection, order_id: str) -> Found | None:
    """The saga of `order_id`, locked for this transaction."""
    row = conn.execute(
        text(
            "SELECT state, step, data, deadline, last_transaction_id, last_position"
            " FROM order_fulfillment_sagas WHERE order_id = :id FOR UPDATE"
        ),
        {"id": order_id},
    ).first()
    if row is None:
        return None
    state, step, data, deadline, tx, position = row
    saga = FulfillmentState(
        order_id=order_id,
        step=Step(step),
        state=Progress(state),
        lines=tuple((sku, quantity) for sku, quantity in data["lines"]),
        total=Money(data["total"]["amount"], data["total"]["currency"]),
        payment_token=data["payment_token"],
        reservation=StockHeld(data["reservation"]),
        payment=Charge(data["payment"]),
        deadline=deadline,
        timed_out=data.get("timed_out", False),
        customer_id=data.get("customer_id", ""),
    )
    return Found(saga, Checkpoint(tx, position), data.get("correlation_id"))


def save(
    conn: Connection,
    saga: FulfillmentState,
    last: Checkpoint,
    moment: dict[str, Any],
    *,
    correlation_id: str | None,
    created: bool = False,
) -> None:
    data = {
        "lines": [list(line) for line in saga.lines],
        "total": {"amount": saga.total.amount, "currency": saga.total.currency},
        "payment_token": saga.payment_token,
        "reservation": saga.reservation,
        "payment": saga.payment,
        "timed_out": saga.timed_out,
        "customer_id": saga.customer_id,
        "correlation_id": correlation_id,
    }
    params = {
        "id": saga.order_id,
        "state": saga.state,
        "step": saga.step,
        "data": jsonb.dumps(data),
        "deadline": saga.deadline,
        "tx": last.transaction_id,
        "position": last.position,
        "moment": jsonb.dumps([moment]),
    }
    if created:
        conn.execute(
            text(
                """
                INSERT INTO order_fulfillment_sagas (order_id, state, step, data, deadline,
                    last_transaction_id, last_position, history)
                VALUES (:id, :state, :step, CAST(:data AS jsonb), :deadline, :tx, :position,
                        CAST(:moment AS jsonb))
                """
            ),
            params,
        )
        return
    conn.execute(
        text(
            """
            UPDATE order_fulfillment_sagas
            SET state = :state, step = :step, data = CAST(:data AS jsonb), deadline = :deadline,
                last_transaction_id = :tx, last_position = :position,
                history = history || CAST(:moment AS jsonb), updated_at = now()
            WHERE order_id = :id
            """
        ),
        params,
    )


def moment(trigger: str, step: Step, note: str, results: list[str]) -> dict[str, Any]:
    """One history entry: what happened, where the saga went, what it issued."""
    return {
        "at": utc_now().isoformat(),
        "trigger": trigger,
        "step": step,
        "note": note,
        "commands": results,
    }


def lock_for_lines(conn: Connection, order_ids: list[str]) -> set[str]:
    """Lock the sagas of `order_ids` (those that exist) for this transaction, in order;
    the SKUs they hold lines of."""
    rows = conn.execute(
        text(
            "SELECT data -> 'lines' FROM order_fulfillment_sagas WHERE order_id = ANY(:ids)"
            " ORDER BY order_id FOR UPDATE"
        ),
        {"ids": order_ids},
    ).scalars()
    return {sku for lines in rows for sku, _ in lines}


def is_overdue(conn: Connection, order_id: str, now: datetime) -> bool:
    """Whether the saga of `order_id` is in progress past its deadline."""
    return bool(
        conn.execute(
            text(
                "SELECT EXISTS (SELECT FROM order_fulfillment_sagas WHERE order_id = :id"
                " AND state = 'in_progress' AND deadline <= :now)"
            ),
            {"id": order_id, "now": now},
        ).scalar()
    )


def overdue(conn: Connection, now: datetime, limit: int) -> list[str]:
    return list(
        conn.execute(
            text(
                "SELECT order_id FROM order_fulfillment_sagas"
                " WHERE state = 'in_progress' AND deadline <= :now ORDER BY deadline LIMIT :limit"
            ),
            {"now": now, "limit": limit},
        ).scalars()
    )


STUCK = "stuck"
COUNTED = (*Progress, STUCK)
"""What `counts` counts: each Progress, and `stuck` (in progress past the payment deadline)."""


def listing(conn: Connection, state: str | None, limit: int) -> list[dict[str, Any]]:
    """Sagas newest first; `stuck` means in progress past the payment deadline."""
    where = ""
    if state == STUCK:
        where = "WHERE state = 'in_progress' AND deadline < now()"
    elif state:
        where = "WHERE state = :state"
    rows = conn.execute(
        text(
            f"""
            SELECT order_id, state, step, data, deadline, history, started_at, updated_at,
                   (state = 'in_progress' AND deadline < now()) AS stuck
            FROM order_fulfillment_sagas {where}
            ORDER BY started_at DESC LIMIT :limit
            """
        ),
        {"state": state, "limit": limit},
    ).mappings()
    return [
        {
            "order_id": row["order_id"],
            "state": row["state"],
            "stuck": bool(row["stuck"]),
            "step": row["step"],
            "reservation": row["data"]["reservation"],
            "payment": row["data"]["payment"],
            "deadline": row["deadline"].isoformat() if row["deadline"] else None,
            "started_at": row["started_at"].isoformat(),
            "updated_at": row["updated_at"].isoformat(),
            "history": row["history"],
        }
        for row in rows
    ]


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        text(
            "SELECT state, count(*) FROM order_fulfillment_sagas GROUP BY state"
            " UNION ALL SELECT 'stuck', count(*) FROM order_fulfillment_sagas"
            " WHERE state = 'in_progress' AND deadline < now()"
        )
    ).all()
    found = dict.fromkeys(COUNTED, 0)
    found.update({state: int(n) for state, n in rows})
    return found
