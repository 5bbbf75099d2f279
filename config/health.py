"""Liveness and readiness probes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from config.database import current_revision
from kernel.subscriptions import Subscriber, SubscriptionRunner
from projections.replicas import Replicas

READY_CHECKS = ("postgres", "redis", "migrations")
"""The checks that decide readiness. The subscriptions check only degrades it: the API
serves commands and queries while no worker drains a partition (answers grow stale), so
taking it out of rotation would not help. So does a replica that does not answer: every
API process reads the same replicas, and commands go on without them."""


def blueprint(
    engine: Engine,
    redis: Redis,
    schema_head: str | None,
    runner: SubscriptionRunner,
    watched: Callable[[], Sequence[Subscriber]],
    replicas: Replicas | None = None,
) -> Blueprint:
    """`/healthz` and `/readyz` over the database at `engine` (expected at migration
    `schema_head`) and `redis`; `/readyz` also names the partitions of the `watched`
    subscriptions (the saga's and the async read models') that `runner`'s workers left
    unheld, with work waiting, for longer than a lease lasts, and the streaming `replicas`
    queries read from that do not answer."""
    probes = Blueprint("health", __name__)

    @probes.get("/healthz")
    def healthz() -> ResponseReturnValue:
        """The process is up and serving requests."""
        return jsonify(status="ok")

    @probes.get("/readyz")
    def readyz() -> ResponseReturnValue:
        """PostgreSQL and Redis answer and the schema is at the newest migration (else 503,
        "not ready"); "degraded" (200) when no worker drains a partition with work."""
        checks: dict[str, Any] = {}
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["postgres"] = "ok"
        except SQLAlchemyError as error:
            checks["postgres"] = f"unreachable: {type(error).__name__}"
        try:
            redis.ping()
            checks["redis"] = "ok"
        except RedisError as error:
            checks["redis"] = f"unreachable: {type(error).__name__}"
        current = current_revision(engine) if checks["postgres"] == "ok" else None
        checks["migrations"] = (
            "ok" if current == schema_head else f"at {current}, expected {schema_head}"
        )
        reachable = checks["postgres"] == checks["redis"] == "ok"
        checks["subscriptions"] = _subscriptions(runner, watched) if reachable else "unknown"
        if not all(checks[name] == "ok" for name in READY_CHECKS):
            return jsonify(status="not ready", checks=checks), 503
        if replicas is not None:  # queries fail or move to others; commands do not
            checks["replicas"] = _replicas(replicas)
        degraded = checks["subscriptions"] != "ok" or checks.get("replicas", "ok") != "ok"
        return jsonify(status="degraded" if degraded else "ready", checks=checks), 200

    return probes


def _replicas(replicas: Replicas) -> str:
    down = [replica.name for replica, lag, _error in replicas.statuses() if lag is None]
    return f"unreachable: {', '.join(down)}" if down else "ok"


def _subscriptions(runner: SubscriptionRunner, watched: Callable[[], Sequence[Subscriber]]) -> str:
    """The partitions that have had work and no holder for longer than a lease lasts (no
    worker runs, or none reaches them), as "stranded: ..."; else "ok"."""
    try:
        statuses = runner.status(watched())
    except (SQLAlchemyError, RedisError) as error:
        return f"unknown: {type(error).__name__}"
    stranded = [
        f"{status.name} partition {part.partition} (no holder for {part.unheld_seconds:.0f} s,"
        f" {part.lag_events} event{'' if part.lag_events == 1 else 's'} waiting)"
        for status in statuses
        for part in status.stranded(runner.lease_seconds)
    ]
    return f"stranded: {', '.join(stranded)}" if stranded else "ok"
