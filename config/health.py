"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from config.bootstrap import Application
from config.database import current_revision

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is up and serving requests."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> ResponseReturnValue:
    """PostgreSQL and Redis answer and the schema is at the newest migration."""
    application: Application = current_app.extensions["application"]
    checks: dict[str, Any] = {}
    try:
        with application.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except SQLAlchemyError as error:
        checks["postgres"] = f"unreachable: {type(error).__name__}"
    try:
        application.redis.ping()
        checks["redis"] = "ok"
    except RedisError as error:
        checks["redis"] = f"unreachable: {type(error).__name__}"
    expected = current_app.config["SCHEMA_HEAD"]
    current = current_revision(application.engine) if checks["postgres"] == "ok" else None
    checks["migrations"] = "ok" if current == expected else f"at {current}, expected {expected}"
    ready = all(value == "ok" for value in checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503
