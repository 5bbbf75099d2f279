"""Order-fulfillment saga state in PostgreSQL, one row per order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from kernel import jsonb
from kernel.event_store import Checkpoint
from kernel.messages import utc_now
from kernel.money import Money
from sagas.state import Charge, FulfillmentState, Progress, Step, StockHeld

SUBSCRIPTION = "order_fulfillment"  # the saga's subscription name, which parks its orders


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
        compensation=data.get("compensation", ""),
        coupon_code=data.get("coupon_code"),
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
    step_again: bool = False,
) -> None:
    """Store the saga's state and add `moment` to its history. The time at its step runs
    from when it entered the step, or from now with `step_again` (an operator retried it)."""
    data = {
        "lines": [list(line) for line in saga.lines],
        "total": {"amount": saga.total.amount, "currency": saga.total.currency},
        "payment_token": saga.payment_token,
        "reservation": saga.reservation,
        "payment": saga.payment,
        "timed_out": saga.timed_out,
        "customer_id": saga.customer_id,
        "compensation": saga.compensation,
        "coupon_code": saga.coupon_code,
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
        "again": step_again,
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
                history = history || CAST(:moment AS jsonb), updated_at = now(),
                step_entered_at = CASE WHEN step = :step AND NOT :again THEN step_entered_at
                                       ELSE now() END
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
"""What `counts` counts: each Progress, and `stuck` (at a step longer than its bound)."""

StepBounds = Mapping[str, float]
"""How long a saga may be at a step, in seconds, by step (a step without one: for ever)."""

# The bounds joined to the sagas: stuck means at a bounded step for longer than its bound.
_BOUNDED = """
    FROM order_fulfillment_sagas AS s
    LEFT JOIN unnest(CAST(:steps AS text[]), CAST(:bounds AS float8[])) AS b(step, seconds)
      ON b.step = s.step
"""
_STUCK = "(b.seconds IS NOT NULL AND s.step_entered_at < now() - make_interval(secs => b.seconds))"


def _bounds(bounds: StepBounds) -> dict[str, Any]:
    return {"steps": list(bounds), "bounds": [float(b) for b in bounds.values()]}


def listing(
    conn: Connection,
    state: str | None,
    limit: int,
    bounds: StepBounds,
    *,
    order_id: str | None = None,
) -> list[dict[str, Any]]:
    """Sagas newest first (`stuck`: those at a step longer than its bound, longest
    first), each with why it was compensated and whether the saga parked its order."""
    where, order = "", "s.started_at DESC"
    if state == STUCK:
        where, order = f"WHERE {_STUCK}", "s.step_entered_at"
    elif state:
        where = "WHERE s.state = :state"
    if order_id is not None:
        where = "WHERE s.order_id = :order_id"
    rows = conn.execute(
        text(
            f"""
            SELECT s.order_id, s.state, s.step, s.data, s.deadline, s.history, s.started_at,
                   s.updated_at, s.step_entered_at, {_STUCK} AS stuck,
                   extract(epoch FROM now() - s.step_entered_at) AS at_step_seconds,
                   b.seconds AS bound,
                   EXISTS (SELECT FROM parked_keys p WHERE p.subscription = :saga
                           AND p.key = s.order_id) AS parked
            {_BOUNDED} {where}
            ORDER BY {order} LIMIT :limit
            """
        ),
        {"state": state, "limit": limit, "saga": SUBSCRIPTION, "order_id": order_id}
        | _bounds(bounds),
    ).mappings()
    return [
        {
            "order_id": row["order_id"],
            "state": row["state"],
            "stuck": bool(row["stuck"]),
            "step": row["step"],
            "step_entered_at": row["step_entered_at"].isoformat(),
            "at_step_seconds": round(float(row["at_step_seconds"]), 1),
            "step_bound_seconds": row["bound"],
            "parked": bool(row["parked"]),
            "compensation": row["data"].get("compensation") or _compensation(row["history"]),
            "reservation": row["data"]["reservation"],
            "payment": row["data"]["payment"],
            "deadline": row["deadline"].isoformat() if row["deadline"] else None,
            "started_at": row["started_at"].isoformat(),
            "updated_at": row["updated_at"].isoformat(),
            "history": row["history"],
        }
        for row in rows
    ]


def _compensation(history: list[dict[str, Any]]) -> str | None:
    """Why a saga recorded before the reason was kept went to cancelling: the note of its
    first moment there (None: it was never cancelled)."""
    for moment in history:
        if moment.get("step") in ("cancelling", "cancelled"):
            return f"{moment.get('trigger')}: {moment.get('note')}"
    return None


def counts(conn: Connection, bounds: StepBounds) -> dict[str, int]:
    rows = conn.execute(
        text(
            "SELECT state, count(*) FROM order_fulfillment_sagas GROUP BY state"
            f" UNION ALL SELECT 'stuck', count(*) {_BOUNDED} WHERE {_STUCK}"
        ),
        _bounds(bounds),
    ).all()
    found = dict.fromkeys(COUNTED, 0)
    found.update({state: int(n) for state, n in rows})
    return found


def stuck_by_step(conn: Connection, bounds: StepBounds) -> dict[str, int]:
    """How many sagas are stuck at each bounded step."""
    rows = conn.execute(
        text(f"SELECT s.step, count(*) {_BOUNDED} WHERE {_STUCK} GROUP BY s.step"),
        _bounds(bounds),
    ).all()
    found = dict.fromkeys(bounds, 0)
    found.update({step: int(n) for step, n in rows})
    return found
