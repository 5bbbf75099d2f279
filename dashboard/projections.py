"""Projections: each subscription's checkpoint, lag (now and lately), state and
errors; rebuilding a read model and following its progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, flash, jsonify, redirect, url_for
from flask.typing import ResponseReturnValue

from dashboard.auth import acting_admin
from dashboard.charts import Sparkline, sparkline
from dashboard.common import confirmation, confirmed, page, problem
from dashboard.lag import LagSamples
from dashboard.partitions import PartitionRow, held_back_by, partition_rows
from dashboard.services import Services
from kernel.horizon import HELD_BACK_AFTER
from kernel.subscriptions import SubscriptionStatus
from projections.generations import Generations, OlderCode
from projections.read_side import ReadSide

# name, kind, store, mode, generation, subscription, rebuild
Current = tuple[str, str, str, str, int | None, SubscriptionStatus, SubscriptionStatus | None]


@dataclass(frozen=True, slots=True)
class Row:
    name: str  # the read model, or the saga
    kind: str  # "read model" or "saga"
    store: str
    mode: str
    generation: int | None
    subscription: SubscriptionStatus
    rebuild: SubscriptionStatus | None
    trend: Sparkline | None
    samples: int
    partitions: list[PartitionRow]  # of the active subscription (the rebuild shows progress)
    generations: Generations | None = None  # a read model's, with versions and reasons
    code_version: int | None = None  # the read model's version in this code


def blueprint(services: Services) -> Blueprint:
    """The subscriptions' page and the rebuild action over the read side of `services`."""
    pages = Blueprint("projections", __name__)
    side = services.read_side

    @pages.get("/projections")
    def index() -> Response:
        """Every subscription as it stands now, with a sparkline of its recent lag and its
        partitions; a warning when long-running writers hold every subscription back."""
        rows = status_rows(services)
        return page(
            "dashboard/projections.html",
            rows=rows,
            read_at=datetime.now(UTC),
            held_back=held_back_by(side),
            held_back_after=HELD_BACK_AFTER,
        )

    @pages.post("/projections/<name>/rebuild")
    def rebuild(name: str) -> ResponseReturnValue:
        """Start replaying the log into a new generation; a worker does the work. The
        first post asks for confirmation."""
        if name not in side.projections:
            return problem(404, "There is no such read model.")
        if not confirmed():
            return _confirm_rebuild(side, name)
        try:
            generation = side.start_rebuild(name, acting_admin().actor)
        except OlderCode as older:
            return problem(409, f"{older}: a rebuild here would go back to it.")
        services.schedule_rebuild(name)
        flash(f"Rebuilding {name} into generation {generation}.", "ok")
        return redirect(url_for("dashboard.projections.index"), code=303)

    @pages.get("/projections/<name>/rebuild.json")
    def progress(name: str) -> Response:
        """How far the rebuild of `name` is (polled by the page while one runs)."""
        if name not in side.projections:
            response = jsonify(error="no such read model")
            response.status_code = 404
            return response
        generations = side.generations(name)
        body: dict[str, Any] = {
            "name": name,
            "subscription": side.projection(name).subscriber(generations.active).name,
            "active": generations.active,
            "building": generations.building,
            "done": generations.building is None,
        }
        if generations.building is not None:
            subscriber = side.projection(name).subscriber(generations.building)
            (status,) = side.runner.status([subscriber])
            head = status.head.position
            body |= {
                "checkpoint": status.checkpoint.position,
                "head": head,
                "lag_events": status.lag_events,
                "percent": round(100 * status.checkpoint.position / head, 1) if head else 100.0,
                "state": status.state,
                "error": status.last_error,
            }
        return jsonify(body)

    return pages


def _confirm_rebuild(side: ReadSide, name: str) -> Response:
    active = side.generations(name).active
    return confirmation(
        title=f"Rebuild {name}?",
        facts=[("Read model", name), ("Queries read", f"generation {active}")],
        consequence=f"A worker replays the whole event log into generation {active + 1};"
        f" queries keep reading generation {active} until it has caught up, then switch to"
        f" it, and generation {active} is deleted.",
        action_url=url_for("dashboard.projections.rebuild", name=name),
        fields={},
        confirm=f"Yes, rebuild {name}",
        name="rebuild",
        back=url_for("dashboard.projections.index"),
    )


def status_rows(services: Services) -> list[Row]:
    """Every read model's subscription and the saga's, each with its recent lag."""
    statuses = services.read_side.status()
    current: list[Current] = [
        (s.name, "read model", s.store, s.mode, s.generation, s.subscription, s.rebuild)
        for s in statuses
    ]
    versions = {s.name: (s.generations, s.code_version) for s in statuses}
    (saga,) = services.read_side.runner.status([services.saga])
    current.append((services.saga.name, "saga", "postgres", "async", None, saga, None))
    samples = LagSamples(services.redis)
    samples.record({row[5].name: (row[5].lag_events, row[5].lag_seconds) for row in current})
    history = samples.read(row[5].name for row in current)
    lease_seconds, now = services.read_side.runner.lease_seconds, datetime.now(UTC)
    rows = []
    for name, kind, store, mode, generation, subscription, rebuild in current:
        lags = [sample.lag_events for sample in history[subscription.name]]
        partitions = partition_rows(subscription, lease_seconds, now)
        rows.append(
            Row(name, kind, store, mode, generation, subscription, rebuild, sparkline(lags),
                len(lags), partitions, *versions.get(name, (None, None)))
        )  # fmt: skip
    return rows
