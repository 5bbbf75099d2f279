"""Operational visibility: Prometheus metrics at `GET /metrics` and JSON request logs.

Counters and histograms (commands, events, HTTP requests) use prometheus_client's
multiprocess mode: every process that builds an application (each gunicorn worker,
each RQ worker) writes its samples to files in one directory
(PROMETHEUS_MULTIPROC_DIR, default VAR_DIR/metrics), and a scrape of any API
process adds them all up. So the numbers do not depend on which gunicorn worker
answers the scrape, and work done by RQ workers on the same host counts too.
Gauges (checkpoints, lag, queue depth, saga counts) are not kept per process:
they are read from PostgreSQL and Redis when scraped.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from rq import Queue, Worker
from sqlalchemy.exc import SQLAlchemyError

from dashboard.lag import LagSamples
from kernel.command_bus import Next
from kernel.event_store import RecordedEvent
from kernel.horizon import RunningWriter
from kernel.logging import bind_correlation
from kernel.messages import Command, Metadata
from kernel.money import Money
from kernel.results import Failure, Result
from kernel.subscriptions import PartitionStatus, SubscriptionStatus
from payments import tracking
from payments.gateway import (
    ChargeRequest,
    ChargeResult,
    CustomerAction,
    PaymentGateway,
    ProviderUnavailable,
    RefundResult,
)
from sagas import store as saga_store

if TYPE_CHECKING:
    from config.bootstrap import Application

log = logging.getLogger("config.metrics")
requests_log = logging.getLogger("config.requests")

UNLOGGED_PATHS = ("/healthz", "/readyz", "/metrics", "/admin/static/", "/docs/static/")
# Every label value comes from a closed set, so what clients send cannot add series: a
# method outside these is counted as OTHER_METHOD, a path no route matches as UNMATCHED
# (the route label is the matched rule, never the path), a status HTTP does not define
# as OTHER_STATUS.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED = "<unmatched>"
STATUSES = frozenset(str(status.value) for status in HTTPStatus)
OTHER_STATUS = "other"
# What `/metrics` answers in: the classic text format generate_latest writes (what
# prometheus_client's own exporter declares for it), with one charset parameter:
# Response(mimetype=...) would append a second one.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_directory: Path | None = None


@dataclass(frozen=True)
class Instruments:
    commands: Counter
    command_failures: Counter
    command_seconds: Histogram
    events: Counter
    requests: Counter
    request_seconds: Histogram
    provider_calls: Counter
    provider_seconds: Histogram


@functools.cache
def _instruments() -> Instruments:
    """One set per process: two sets would each keep a value for the same file entry."""
    return Instruments(
        commands=Counter(
            "shop_commands_handled", "Commands dispatched through the bus, by type",
            ["command"], registry=None,
        ),
        command_failures=Counter(
            "shop_commands_failed",
            "Commands that were refused (code = the failure's code) or crashed (code = error)",
            ["command", "code"], registry=None,
        ),
        command_seconds=Histogram(
            "shop_command_duration_seconds", "Time to handle a command, retries included",
            ["command"], registry=None,
        ),
        events=Counter(
            "shop_events_appended", "Events committed to the event store, by type",
            ["event", "stream_type"], registry=None,
        ),
        requests=Counter(
            "shop_http_requests", "HTTP requests answered, by route and status",
            ["method", "route", "status"], registry=None,
        ),
        request_seconds=Histogram(
            "shop_http_request_duration_seconds", "Time to answer an HTTP request, by route",
            ["method", "route"], registry=None,
        ),
        provider_calls=Counter(
            "shop_payment_provider_calls",
            "Calls to the payment provider by call (charge, look_up, fence, cancel,"
            " refund, customer_action) and outcome"
            " (succeeded, failed, pending, unavailable: unknown, retried; error: a bug or"
            " a misconfiguration)",
            ["call", "outcome"], registry=None,
        ),
        provider_seconds=Histogram(
            "shop_payment_provider_call_duration_seconds",
            "Time a call to the payment provider took, timeouts included", ["call"],
            buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30), registry=None,
        ),
    )  # fmt: skip


class Metrics:
    """The counters a process records; `render` adds up every process's files."""

    def __init__(self, directory: Path) -> None:
        self.directory = _use_directory(directory)
        self.instruments = _instruments()

    def observe_command(self, command: Command, metadata: Metadata, call_next: Next) -> Result:
        """Command-bus middleware: count each command, its failures and its duration."""
        name = type(command).__name__
        started = time.perf_counter()
        try:
            result = call_next(command, metadata)
        except Exception:
            self.instruments.command_failures.labels(name, "error").inc()
            raise
        finally:
            self.instruments.commands.labels(name).inc()
            self.instruments.command_seconds.labels(name).observe(time.perf_counter() - started)
        if isinstance(result, Failure):
            self.instruments.command_failures.labels(name, result.code).inc()
        return result

    def events_appended(self, recorded: Sequence[RecordedEvent]) -> None:
        """After-commit listener: count the committed events and log them in one line."""
        for event in recorded:
            self.instruments.events.labels(event.type, event.stream_type).inc()
        if not recorded:
            return
        first = recorded[0]
        with bind_correlation(first.metadata.correlation_id, first.metadata.causation_id):
            log.info(
                "events appended",
                extra={
                    "event_types": [event.type for event in recorded],
                    "order_id": first.data.get("order_id"),
                    "streams": sorted({event.stream_id for event in recorded}),
                    "positions": [recorded[0].position, recorded[-1].position],
                },
            )

    def measured(self, gateway: PaymentGateway) -> PaymentGateway:
        """`gateway`, its calls counted and timed."""
        return MeasuredGateway(gateway, self.instruments)

    def render(self, *collectors: Collector) -> bytes:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.directory))  # type: ignore[no-untyped-call]
        for collector in collectors:
            registry.register(collector)
        return generate_latest(registry)


class MeasuredGateway:
    """A payment gateway whose every call is counted by outcome and timed."""

    def __init__(self, gateway: PaymentGateway, instruments: Instruments) -> None:
        self.gateway = gateway
        self.instruments = instruments

    def charge(self, request: ChargeRequest) -> ChargeResult:
        with self._measure("charge") as outcome:
            result = self.gateway.charge(request)
            outcome.append(result.status)
            return result

    def charge_status(self, reference: str) -> ChargeResult:
        with self._measure("look_up") as outcome:
            result = self.gateway.charge_status(reference)
            outcome.append(result.status)
            return result

    def customer_action(self, reference: str) -> CustomerAction:
        with self._measure("customer_action") as outcome:
            action = self.gateway.customer_action(reference)
            outcome.append("succeeded")
            return action

    def fence(self, request: ChargeRequest) -> ChargeResult:
        with self._measure("fence") as outcome:
            result = self.gateway.fence(request)
            outcome.append(result.status)
            return result

    def cancel(self, reference: str, idempotency_key: str) -> ChargeResult:
        with self._measure("cancel") as outcome:
            result = self.gateway.cancel(reference, idempotency_key)
            outcome.append(result.status)
            return result

    def refund(
        self, order_id: str, charge_reference: str, amount: Money, idempotency_key: str
    ) -> RefundResult:
        with self._measure("refund") as outcome:
            result = self.gateway.refund(order_id, charge_reference, amount, idempotency_key)
            outcome.append(result.status)
            return result

    @contextlib.contextmanager
    def _measure(self, call: str) -> Iterator[list[str]]:
        outcome: list[str] = []
        started = time.perf_counter()
        try:
            yield outcome
        except ProviderUnavailable:
            outcome.append("unavailable")
            raise
        except Exception:
            outcome.append("error")
            raise
        finally:
            self.instruments.provider_seconds.labels(call).observe(time.perf_counter() - started)
            self.instruments.provider_calls.labels(call, (outcome or ["error"])[-1]).inc()


def _use_directory(directory: Path) -> Path:
    """Point prometheus_client at the shared directory, once per process.

    prometheus_client picks its value store when it is imported, from the
    environment; the settings are read later, so switch it here, before the
    first metric exists.
    """
    global _directory
    if _directory is None:
        directory = directory.resolve()
        directory.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        _directory = directory
    elif _directory != directory.resolve():
        log.warning(
            "metrics already go to another directory in this process",
            extra={"directory": str(_directory), "ignored": str(directory)},
        )
    return _directory


class Operations:
    """Collected at scrape time: subscriptions, queues and sagas as they are now."""

    def __init__(self, application: Application) -> None:
        self.application = application

    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily(
            "shop_metrics_collect_errors", "1 when a source could not be read", labels=["source"]
        )
        for source, collect in (
            ("subscriptions", self._subscriptions),
            ("queues", self._queues),
            ("sagas", self._sagas),
            ("payments", self._payments),
            ("replicas", self._replicas),
        ):
            try:
                yield from collect()
                errors.add_metric([source], 0)
            except (SQLAlchemyError, RedisError) as error:
                failure = {"source": source, "error": str(error)[:300]}
                log.warning("could not collect metrics", extra=failure)
                errors.add_metric([source], 1)
        yield errors

    def _subscriptions(self) -> Iterator[Metric]:
        c = self.application
        labels = ["name", "subscription", "role"]  # name: the read model or the saga
        families = {
            "checkpoint": GaugeMetricFamily(
                "shop_subscription_checkpoint_position",
                "Log position of the last event the subscription applied", labels=labels,
            ),
            "lag_events": GaugeMetricFamily(
                "shop_subscription_lag_events", "Events the subscription has still to apply",
                labels=labels,
            ),
            "lag_seconds": GaugeMetricFamily(
                "shop_subscription_lag_seconds", "Age of the oldest event not yet applied",
                labels=labels,
            ),
            "failed": GaugeMetricFamily(
                "shop_subscription_failed", "1 when the subscription is stopped at a failing event",
                labels=labels,
            ),
            "parked": GaugeMetricFamily(
                "shop_subscription_parked_keys",
                "Keys (orders) whose events the subscription passes over until retried",
                labels=labels,
            ),
        }  # fmt: skip
        generations = GaugeMetricFamily(
            "shop_read_model_generation", "Generation queries read", labels=["name"]
        )
        found: list[tuple[str, str, SubscriptionStatus]] = []
        for status in c.read_side.status():
            generations.add_metric([status.name], status.generation)
            found.append((status.name, "active", status.subscription))
            if status.rebuild is not None:
                found.append((status.name, "rebuild", status.rebuild))
        (saga,) = c.runner.status([c.saga])
        found.append((c.saga.name, "saga", saga))
        head = GaugeMetricFamily("shop_event_log_head_position", "Position of the newest event")
        head.add_metric([], saga.head.position)
        for name, role, sub in found:
            key = [name, sub.name, role]
            families["checkpoint"].add_metric(key, sub.checkpoint.position)
            families["lag_events"].add_metric(key, sub.lag_events)
            families["lag_seconds"].add_metric(key, sub.lag_seconds)
            families["failed"].add_metric(key, 1 if sub.state == "failed" else 0)
            families["parked"].add_metric(key, sub.parked_keys)
        LagSamples(c.redis).record(
            {sub.name: (sub.lag_events, sub.lag_seconds) for _, role, sub in found}
        )
        yield head
        yield generations
        yield from families.values()
        yield from _partitions([sub for _, _, sub in found])
        yield _oldest_writer(c.runner.writers_holding_back(0.0))

    def _queues(self) -> Iterator[Metric]:
        redis = self.application.redis
        depth = GaugeMetricFamily(
            "shop_rq_queue_jobs", "Jobs waiting in the queue", labels=["queue"]
        )
        failed = GaugeMetricFamily(
            "shop_rq_failed_jobs", "Jobs in the queue's failed registry", labels=["queue"]
        )
        for name in self.application.queues.names:
            queue = Queue(name, connection=redis)
            depth.add_metric([name], queue.count)
            failed.add_metric([name], queue.failed_job_registry.count)
        workers = GaugeMetricFamily("shop_rq_workers", "RQ workers registered in Redis")
        workers.add_metric([], Worker.count(connection=redis))
        yield from (depth, failed, workers)

    def _sagas(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "shop_sagas", "Order-fulfillment sagas by state (stuck: at a step past its bound)",
            labels=["state"],
        )  # fmt: skip
        stuck = GaugeMetricFamily(
            "shop_sagas_stuck", "Sagas at the step longer than the step's bound, by step",
            labels=["step"],
        )  # fmt: skip
        bounds = self.application.settings.saga_step_bounds
        with self.application.engine.connect() as conn:
            for state, count in saga_store.counts(conn, bounds).items():
                family.add_metric([state], count)
            for step, count in saga_store.stuck_by_step(conn, bounds).items():
                stuck.add_metric([step], count)
        yield from (family, stuck)

    def _replicas(self) -> Iterator[Metric]:
        """Each streaming replica queries read from (none without READ_DATABASE_URL); one
        that does not answer is down, with no lag to tell."""
        labels = ["replica"]
        up = GaugeMetricFamily("shop_replica_up", "1 when the replica answers", labels=labels)
        seconds = GaugeMetricFamily(
            "shop_replica_lag_seconds",
            "How far the replica's data is behind the primary's (0 once it replayed all it got)",
            labels=labels,
        )
        behind = GaugeMetricFamily(
            "shop_replica_lag_bytes", "WAL the replica received and has not replayed", labels=labels
        )
        replicas = self.application.read_side.replicas
        for replica, lag, _error in replicas.statuses() if replicas else ():
            up.add_metric([replica.name], 0 if lag is None else 1)
            if lag is not None:
                seconds.add_metric([replica.name], lag.seconds)
                behind.add_metric([replica.name], lag.bytes)
        yield from (up, seconds, behind)

    def _payments(self) -> Iterator[Metric]:
        waiting = GaugeMetricFamily(
            "shop_payments_awaiting_provider",
            "Payments waiting on the provider, by status (requested, pending, refunding)",
            labels=["status"],
        )
        oldest = GaugeMetricFamily(
            "shop_payments_awaiting_provider_oldest_seconds",
            "How long the payment waiting longest on the provider has waited",
        )
        with self.application.engine.connect() as conn:
            summary = tracking.awaiting_summary(conn)
        for status in tracking.AWAITING_STATUSES:
            waiting.add_metric([status], summary.counts.get(status, 0))
        oldest.add_metric([], summary.oldest_seconds)
        yield from (waiting, oldest)


def _partitions(subscriptions: Sequence[SubscriptionStatus]) -> Iterator[Metric]:
    """Each partition's lag and lease: one with lag and no holder waits for a worker."""
    labels = ["subscription", "partition"]
    checkpoint = GaugeMetricFamily(
        "shop_subscription_partition_checkpoint_position",
        "Log position of the last event the partition applied",
        labels=labels,
    )
    lag_events = GaugeMetricFamily(
        "shop_subscription_partition_lag_events",
        "Events the partition has still to apply",
        labels=labels,
    )
    lag_seconds = GaugeMetricFamily(
        "shop_subscription_partition_lag_seconds",
        "Age of the oldest event the partition has not applied",
        labels=labels,
    )
    held = GaugeMetricFamily(
        "shop_subscription_partition_held",
        "1 when a worker holds the partition's lease, 0 when none does",
        labels=labels,
    )
    lease_left = GaugeMetricFamily(
        "shop_subscription_partition_lease_seconds_remaining",
        "Seconds until the holder's lease runs out unless renewed (0: no holder)",
        labels=labels,
    )
    now = datetime.now(UTC)
    for sub in subscriptions:
        for part in sub.partitions:
            key = [sub.name, str(part.partition)]
            checkpoint.add_metric(key, part.checkpoint.position)
            lag_events.add_metric(key, part.lag_events)
            lag_seconds.add_metric(key, part.lag_seconds)
            held.add_metric(key, 1 if part.holder else 0)
            lease_left.add_metric(key, _seconds_left(part, now))
    yield from (checkpoint, lag_events, lag_seconds, held, lease_left)


def _seconds_left(part: PartitionStatus, now: datetime) -> float:
    if part.holder is None or part.lease_expires_at is None:
        return 0.0
    return max((part.lease_expires_at - now).total_seconds(), 0.0)


def _oldest_writer(writers: Sequence[RunningWriter]) -> Metric:
    oldest = GaugeMetricFamily(
        "shop_event_store_oldest_writer_seconds",
        "Age of the oldest running event-store writer transaction: every subscription waits"
        " for it to end (0: none running)",
    )
    oldest.add_metric([], max((w.age_seconds for w in writers), default=0.0))
    return oldest


def init_app(app: Flask, application: Application) -> None:
    """Serve `/metrics` (no credential: keep it on an internal network) and time,
    count and log every request as a JSON line."""
    metrics = application.metrics
    operations = Operations(application)

    @app.get("/metrics")
    def scrape() -> Response:
        return Response(metrics.render(operations), content_type=METRICS_CONTENT_TYPE)

    @app.before_request
    def start_clock() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def observe(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        if started is None:
            return response
        seconds = time.perf_counter() - started
        route = request.url_rule.rule if request.url_rule else UNMATCHED
        method = request.method if request.method in METHODS else OTHER_METHOD
        status = str(response.status_code)
        status = status if status in STATUSES else OTHER_STATUS
        metrics.instruments.requests.labels(method, route, status).inc()
        metrics.instruments.request_seconds.labels(method, route).observe(seconds)
        if not request.path.startswith(UNLOGGED_PATHS):
            _log_request(response, route, seconds)
        return response


def _log_request(response: Response, route: str, seconds: float) -> None:
    correlation = request.headers.get("X-Correlation-ID", "")
    fields: dict[str, object] = {
        "method": request.method,
        "path": request.path,
        "route": route,
        "status": response.status_code,
        "duration_ms": round(seconds * 1000, 2),
    }
    if (request.view_args or {}).get("order_id"):
        fields["order_id"] = str((request.view_args or {})["order_id"])
    with bind_correlation(correlation if _CORRELATION.match(correlation) else None):
        requests_log.info("request", extra=fields)
