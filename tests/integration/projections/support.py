"""Shared by the read-side tests: the events about one order and the day they fell on.

The read models themselves are looked at with tests.support.read_models.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import text

from config.bootstrap import Application


def order_events(application: Application, order_id: str) -> list[tuple[str, str, int]]:
    """(type, occurred_at, position) of every event about one order, in log order."""
    with application.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT type, metadata ->> 'occurred_at', position FROM events"
                " WHERE data ->> 'order_id' = :id ORDER BY transaction_id, position"
            ),
            {"id": order_id},
        ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def day_of(occurred_at: str) -> date:
    return datetime.fromisoformat(occurred_at).date()
