"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from config.database import current_revision


def blueprint(engine: Engine, redis: Redis, schema_head: str | None) -> Blueprint:
    """`/healthz` and `/readyz` over the database at `engine` (expected at migration
    `schema_head`) and `redis`."""
    probes = Blueprint("health", __name__)

    @probes.get("/healthz")
    def healthz() -> ResponseReturnValue:
        """The process is up and serving requests."""
        return jsonify(status="ok")

    @probes.get("/readyz")
    def readyz() -> ResponseReturnValue:
        """PostgreSQL and Redis answer and the schema is at the newest migration."""
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
        ready = all(value == "ok" for value in checks.values())
        status = 200 if ready else 503
        return jsonify(status="ready" if ready else "not ready", checks=checks), status

    return probes
