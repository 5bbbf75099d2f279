"""Shared by the saga's integration tests: the saga driven in-process through its RQ job
function, and whole-table snapshots to compare."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

import config.jobs
from config.bootstrap import Application
from projections import generations
from sagas.order_fulfillment import NAME
from tests.support.payments import settle_payments
from tests.support.polling import eventually
from tests.support.state import row_count


def settle(application: Application) -> None:
    """Run the saga's catch-up job and the payment provider calls (as the workers would)
    until the saga has applied the whole log and a further run appends nothing: every
    command it issued has had its effect."""

    def settled() -> None:
        before = row_count(application.engine, "events")
        config.jobs.catch_up(NAME)
        settle_payments(application)
        (status,) = application.runner.status([application.saga])
        assert status.last_error is None, status.last_error
        assert (status.state, status.lag_events) == ("caught_up", 0), status
        assert row_count(application.engine, "events") == before

    eventually(settled, timeout=20, interval=0.01)


def rows(application: Application, query: str) -> list[dict[str, Any]]:
    with application.engine.connect() as conn:
        return [dict(row) for row in conn.execute(text(query)).mappings()]


def sagas(application: Application) -> dict[str, dict[str, Any]]:
    """Every saga row, whole (state, data, deadline, last checkpoint, history, timestamps)."""
    found = rows(application, "SELECT * FROM order_fulfillment_sagas ORDER BY order_id")
    return {row["order_id"]: row for row in found}


def order_events(application: Application, order_id: str) -> list[str]:
    with application.engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT type FROM events WHERE data ->> 'order_id' = :id"
                    " ORDER BY transaction_id, position"
                ),
                {"id": order_id},
            ).scalars()
        )


def available(application: Application) -> dict[str, int]:
    with application.engine.connect() as conn:
        active = generations.read(conn, "catalog").active
        found = conn.execute(
            text("SELECT sku, available FROM catalog_products WHERE generation = :g"),
            {"g": active},
        ).all()
    return {sku: int(quantity) for sku, quantity in found}
