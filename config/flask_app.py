"""The Flask app factory: the API, its OpenAPI docs, probes, metrics and the dashboard."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any

from flask import Flask, Response, request, send_from_directory
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import HTTPException

import dashboard
import inventory.api
import orders.accounts_api
import orders.api
import orders.carts_api
import payments.api
import pricing.api
import projections.api
import projections.cart_api
import sagas.api
from config import health, metrics, privacy_api, rate_limits
from config.adapters import tax_display
from config.bootstrap import Application
from config.database import head_revision
from kernel import parking_api
from kernel.http import ProblemApi, problem_response
from kernel.logging import configure_logging
from kernel.status_api import subscription_status
from kernel.subscriptions import Subscriber
from payments.api import WebhookKey

log = logging.getLogger("config.flask_app")

SWAGGER_UI_STATIC = "/docs/static"
"""Where `/docs` loads Swagger UI's scripts and stylesheet from (see _serve_swagger_ui)."""


def create_app(application: Application) -> Flask:
    """The API over `application`'s services; each blueprint gets the ones it uses."""
    settings = application.settings
    configure_logging(settings.log_level)
    app = Flask("shop")
    if application.tracing is not None:  # first: its span must wrap every other hook
        application.tracing.instrument_app(app)
    app.config.update(
        API_TITLE="Shop order backend",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Swagger UI from the pinned swagger-ui-bundle package, served here: no CDN (the
        # page works offline, and no third-party script runs where admins paste tokens).
        OPENAPI_SWAGGER_UI_URL=f"{SWAGGER_UI_STATIC}/",
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},  # no spec URL sent to its validator
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.api_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),  # how long a dashboard sign-in lasts
    )
    app.secret_key = settings.secret_key
    metrics.init_app(app, application)
    _serve_swagger_ui(app)
    api = ProblemApi(app)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    bus, authenticator, read_side = (
        application.bus,
        application.authenticator,
        application.read_side,
    )
    webhooks = WebhookKey(settings.require_stripe()[1], settings.webhook_tolerance)
    for blueprint in (
        orders.accounts_api.blueprint(bus, authenticator, application.accounts),
        orders.api.blueprint(bus, authenticator, holds_last=settings.payment_timeout),
        orders.carts_api.blueprint(bus, authenticator, holds_last=settings.payment_timeout),
        inventory.api.blueprint(bus, authenticator),
        pricing.api.blueprint(bus, authenticator, application.engine),
        payments.api.blueprint(
            bus, authenticator, application.payment_inbox, webhooks, application.provider_calls
        ),
        projections.api.blueprint(
            read_side,
            application.redis,
            authenticator,
            application.queues.rebuild,
            tax_display=tax_display,
        ),
        projections.cart_api.blueprint(
            read_side,
            application.redis,
            authenticator,
            timedelta(seconds=settings.cart_ttl),
            quote_cart=application.cart_quotes,
        ),
        sagas.api.blueprint(
            application.engine,
            authenticator,
            partial(_saga_subscription, application),
            application.saga,
            settings.saga_step_bounds,
        ),
        parking_api.blueprint(
            application.engine, application.runner, authenticator, application.subscriber
        ),
        privacy_api.blueprint(application.engine, application.store, authenticator),
    ):
        api.register_blueprint(blueprint)
    schema_head = head_revision(application.settings.require()[0])
    app.register_blueprint(
        health.blueprint(
            application.engine,
            application.redis,
            schema_head,
            application.runner,
            partial(_drained_by_workers, application),
            read_side.replicas,
        )
    )
    dashboard.init_app(
        app,
        dashboard.Services(
            read_side=read_side,
            bus=bus,
            redis=application.redis,
            saga=application.saga,
            engine=application.engine,
            authenticator=authenticator,
            admins=application.admins,
            admin_token=settings.admin_token or "",
            schedule_rebuild=application.queues.rebuild,
            rq_redis_url=settings.redis_url,
            subscriber=application.subscriber,
            saga_step_bounds=settings.saga_step_bounds,
        ),
    )

    rate_limits.init_app(app, settings, application.redis, authenticator)

    @app.before_request
    def json_bodies_only() -> Response | None:
        has_body = request.method in {"POST", "PUT", "PATCH"} and request.content_length
        if "dashboard" in request.blueprints:  # the dashboard's HTML forms
            return None
        if has_body and not request.is_json:
            return problem_response(
                415, "Unsupported Media Type", "Send the body as application/json."
            )
        return None

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            return api.handle_http_exception(error)
        if _unstorable_text(error):
            return problem_response(
                422,
                "Unprocessable Entity",
                "The request has a value that cannot be stored (e.g. a NUL character).",
            )
        unavailable = _unavailable(error)
        if unavailable:
            log.warning("a backing service is unavailable", extra={"error": str(error)[:300]})
            return problem_response(
                503, "Service Unavailable", unavailable, headers={"Retry-After": "2"}
            )
        log.exception("unhandled error")
        return problem_response(500, "Internal Server Error", "An unexpected error occurred.")

    return app


def _serve_swagger_ui(app: Flask) -> None:
    """Serve the files of the Swagger UI release swagger-ui-bundle ships (its version is
    pinned with the package) under SWAGGER_UI_STATIC."""
    folder = str(swagger_ui_path)

    @app.get(f"{SWAGGER_UI_STATIC}/<path:filename>")
    def swagger_ui_file(filename: str) -> Response:
        return send_from_directory(folder, filename, max_age=3600)


def _saga_subscription(application: Application) -> dict[str, Any]:
    (status,) = application.runner.status([application.saga])
    return subscription_status(status)


def _drained_by_workers(application: Application) -> list[Subscriber]:
    """The saga's subscriber and each async read model's live ones (a rebuild's too, of
    any version: one no worker runs the code for is stranded): what only the workers move
    forward, so what /readyz watches for stranded partitions."""
    side = application.read_side
    names = [name for name, projection in side.projections.items() if projection.mode == "async"]
    return [application.saga, *(s for name in names for s in side.live_subscribers(name))]


def _unavailable(error: Exception) -> str | None:
    """What to tell the client when PostgreSQL or Redis cannot be reached (else None)."""
    if isinstance(error, OperationalError | InterfaceError | SATimeoutError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    ):
        return "The database is unavailable. Try again shortly; an Idempotency-Key makes it safe."
    if isinstance(error, RedisConnectionError | RedisTimeoutError):
        return "The read store is unavailable. Try again shortly."
    return None


def _unstorable_text(error: Exception) -> bool:
    """PostgreSQL (or psycopg, before sending) refused a value: a NUL character, text
    outside the encoding, a number out of range. Nothing was written: the transaction
    rolled back."""
    if not isinstance(error, DataError):
        return False
    sqlstate = getattr(error.orig, "sqlstate", None)
    return sqlstate is None or sqlstate in {"22P05", "22021", "22P02", "22003", "22025"}
