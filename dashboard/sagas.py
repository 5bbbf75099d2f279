"""Sagas: how many are in each state, and the ones that wait (and for what)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response

from dashboard.common import Fresh, page
from dashboard.partitions import held_back_by, partition_rows
from dashboard.services import Services
from kernel.horizon import HELD_BACK_AFTER
from sagas import store

WAITING_FOR = {
    "reserving": "inventory to be reserved",
    "paying": "the payment result",
    "confirming": "the order to be confirmed",
    "cancelling": "the compensation to finish (release, refund, cancel)",
    "awaiting_shipment": "the order to ship",
}


def blueprint(services: Services) -> Blueprint:
    """The sagas' page: their state in the database (`services.engine`), the saga's lag."""
    pages = Blueprint("sagas", __name__)

    @pages.get("/sagas")
    def index() -> Response:
        """Counts by state; stuck sagas (past their payment deadline) and those in progress;
        the saga's partitions and who holds them."""
        runner = services.read_side.runner
        (subscription,) = runner.status([services.saga])
        now = datetime.now(UTC)
        fresh = Fresh(services.saga.name, subscription.lag_events, subscription.lag_seconds, now)
        with services.engine.connect() as conn:
            counts = store.counts(conn)
            stuck = store.listing(conn, "stuck", 50)
            waiting = store.listing(conn, "in_progress", 50)
        return page(
            "dashboard/sagas.html",
            fresh=fresh,
            counts=counts,
            stuck=stuck,
            waiting=[saga for saga in waiting if not saga["stuck"]],
            waiting_for=WAITING_FOR,
            subscription=subscription,
            partitions=partition_rows(subscription, runner.lease_seconds, now),
            held_back=held_back_by(services.read_side),
            held_back_after=HELD_BACK_AFTER,
        )

    return pages
