"""Sagas: how many are in each state, the ones that wait (and for what), why the
compensated ones were cancelled; retrying a saga's step, or cancelling its order (the
order page's cancel action, with its confirmation: the saga compensates)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask import Blueprint, Response, flash, redirect, url_for
from flask.typing import ResponseReturnValue

from dashboard.auth import acting_admin
from dashboard.common import Fresh, page, problem
from dashboard.partitions import held_back_by, partition_rows
from dashboard.services import Services
from kernel.horizon import HELD_BACK_AFTER
from sagas import store
from sagas.order_fulfillment import NothingToRetry

WAITING_FOR = {
    "reserving": "inventory to be reserved",
    "paying": "the payment result",
    "confirming": "the order to be confirmed",
    "cancelling": "the compensation to finish (release, refund, cancel)",
    "awaiting_shipment": "the order to ship",
    "partially_shipped": "the rest of the order to ship",
}


def blueprint(services: Services) -> Blueprint:
    """The sagas' page: their state in the database (`services.engine`), the saga's lag,
    and the operator's actions on one saga."""
    pages = Blueprint("sagas", __name__)
    bounds = services.saga_step_bounds

    @pages.get("/sagas")
    def index() -> Response:
        """Counts by state; stuck sagas (at a step longer than its bound), those in
        progress and the latest compensated with why; the saga's partitions."""
        runner = services.read_side.runner
        (subscription,) = runner.status([services.saga])
        now = datetime.now(UTC)
        fresh = Fresh(services.saga.name, subscription.lag_events, subscription.lag_seconds, now)
        with services.engine.connect() as conn:
            counts = store.counts(conn, bounds)
            stuck = store.listing(conn, store.STUCK, 50, bounds)
            waiting = store.listing(conn, "in_progress", 50, bounds)
            compensated = store.listing(conn, "compensated", 20, bounds)
        return page(
            "dashboard/sagas.html",
            fresh=fresh,
            counts=counts,
            bounds=bounds,
            stuck=stuck,
            waiting=[saga for saga in waiting if not saga["stuck"]],
            compensated=compensated,
            waiting_for=WAITING_FOR,
            subscription=subscription,
            partitions=partition_rows(subscription, runner.lease_seconds, now),
            held_back=held_back_by(services.read_side),
            held_back_after=HELD_BACK_AFTER,
        )

    @pages.post("/sagas/<uuid:order_id>/retry")
    def retry(order_id: uuid.UUID) -> ResponseReturnValue:
        """Issue the saga's current step's commands again."""
        try:
            actor = acting_admin().actor
            results = services.saga.retry_step(str(order_id), actor, str(uuid.uuid4()))
        except LookupError:
            return problem(404, "There is no saga for that order.")
        except NothingToRetry as nothing:
            flash(f"Nothing to retry: {nothing}.", "error")
        else:
            flash(f"Retried the step of {order_id}: {', '.join(results)}.", "ok")
        return redirect(url_for("dashboard.sagas.index"), code=303)

    return pages
