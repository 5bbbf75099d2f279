"""What tracing costs an order, with it off (the default) and on (issue 16).

Processes, each with its own application built by the composition root over the same
fresh shop database: `off` as every entry point builds it without OTEL_* variables, `on`
with tracing on, its spans going through the batch span processor (as in production) to
an exporter that encodes them as OTLP protobuf, as the OTLP exporter does before it sends,
and drops the bytes: the cost of making, batching and encoding the spans, without a
collector's network. They take turns, round by round (the order rotates), never at
once. A round is a whole order path in one process, as a test drives it: `POST
/api/orders` through the Flask app (its test client), then the workers' own job code
(`config.jobs.Jobs.catch_up` of every subscription, the sweep's move of the synchronous
read models) and the payments workers' provider call through the local Stripe, until
every order of the round is confirmed and a further pass applies nothing. Measured: the
round's wall time and the process's CPU time (the span processor's thread included), and
each POST's latency. A third process runs with tracing on and no order sampled
(OTEL_TRACES_SAMPLER=parentbased_always_off): the floor of what tracing on costs.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from redis import Redis
from sqlalchemy import text

from bench.env import Servers, bench_settings
from bench.results import Baseline, Metric
from bench.shop import PASSWORD, PLENTY, PRODUCTS, order_body
from bench.stats import ms, percentile
from config.bootstrap import Application, bootstrap
from config.flask_app import create_app
from config.jobs import Jobs
from config.queues import EVERY_SUBSCRIPTION
from config.settings import Settings
from inventory.commands import AddProduct
from kernel.messages import Metadata
from kernel.money import Money
from payments import tracking

CONDITIONS = ("off", "on", "unsampled")
"""Tracing off; on, every order sampled; on, no order sampled (OTEL_TRACES_SAMPLER=
parentbased_always_off): what tracing costs before a span is recorded or exported."""


class EncodedAndDropped(SpanExporter):
    """Encodes each batch as the OTLP exporter would send it, then drops it; counts."""

    def __init__(self) -> None:
        self.spans = 0
        self.bytes = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.bytes += len(encode_spans(spans).SerializeToString())
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


class _Orders:
    """One condition's application, placing and fulfilling rounds of orders."""

    def __init__(self, condition: str, settings: Settings) -> None:
        if condition == "unsampled":  # read by the SDK (config.tracing.start_tracing)
            os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_always_off"
        self.exported = EncodedAndDropped()
        self.processor = BatchSpanProcessor(self.exported) if condition != "off" else None
        self.application = bootstrap(settings, span_processor=self.processor)
        app = create_app(self.application)
        app.testing = True
        self.client = app.test_client()
        self.jobs = Jobs(self.application)
        self.synchronous = [
            name for name, p in self.application.read_side.projections.items() if p.mode == "sync"
        ]
        answer = self.client.post(
            "/api/customers",
            json={"email": f"{condition}@example.com", "name": condition, "password": PASSWORD},
        )
        assert answer.status_code == 201, answer.get_json()
        self.headers = {"Authorization": f"Bearer {answer.get_json()['token']}"}

    def round(self, orders: int) -> dict[str, Any]:
        spans_before = self.exported.spans
        started, cpu_started = time.perf_counter(), time.process_time()
        latencies, placed = [], []
        for _ in range(orders):
            began = time.perf_counter()
            answer = self.client.post("/api/orders", json=order_body(), headers=self.headers)
            latencies.append(time.perf_counter() - began)
            assert answer.status_code == 202, answer.get_json()
            placed.append(answer.get_json()["order_id"])
        passes = self._fulfil(placed)
        if self.processor is not None:
            self.processor.force_flush()  # this round's spans are made, batched and encoded
        return {
            "orders": orders,
            "seconds": time.perf_counter() - started,
            "cpu_seconds": time.process_time() - cpu_started,
            "post_latencies": latencies,
            "passes": passes,
            "spans": self.exported.spans - spans_before,
        }

    def _fulfil(self, order_ids: list[str], give_up: float = 120) -> int:
        app = self.application
        deadline = time.monotonic() + give_up
        passes = 0
        while time.monotonic() < deadline:
            passes += 1
            applied = sum(self.jobs.catch_up(EVERY_SUBSCRIPTION).values())
            for name in self.synchronous:
                applied += sum(self.jobs.catch_up(name).values())
            with app.engine.connect() as conn:
                waiting = tracking.overdue(conn, older_than=0, limit=10_000)
            for payment in waiting:
                app.provider_calls.settle(payment.order_id)
            if not applied and not waiting and _confirmed(app, order_ids) == len(order_ids):
                return passes
        raise RuntimeError(f"{len(order_ids)} orders not fulfilled within {give_up} s")

    def close(self) -> None:
        self.application.close()


def _confirmed(application: Application, order_ids: list[str]) -> int:
    with application.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM events WHERE type = 'OrderConfirmed'"
                    " AND data ->> 'order_id' = ANY(:ids)"
                ),
                {"ids": order_ids},
            ).scalar_one()
        )


def _child(condition: str, settings: Settings, pipe: Pipe) -> None:
    orders = _Orders(condition, settings)
    pipe.send("ready")
    while (wanted := pipe.recv()) is not None:
        pipe.send(orders.round(wanted))
    orders.close()


def tracing_cost(
    servers: Servers,
    name: str,
    redis_url: str,
    var_dir: Path,
    rounds: int,
    orders_per_round: int,
) -> list[Metric]:
    url = servers.create_database(name + "_tracing")
    Redis.from_url(redis_url).flushdb()  # a fresh shop: its order list and queues start empty
    settings = replace(
        bench_settings(url, redis_url, var_dir, servers.stripe_url), log_level="WARNING"
    )
    seeder = bootstrap(settings)
    for sku, title, price in PRODUCTS:
        product = AddProduct(sku, title, Money(price, "EUR"), PLENTY)
        assert seeder.bus.dispatch(product, Metadata(actor="bench")).ok
    seeder.close()

    context = multiprocessing.get_context("spawn")  # no inherited pools or threads
    pipes, children = {}, []
    for condition in CONDITIONS:
        parent, child = context.Pipe()
        process = context.Process(target=_child, args=(condition, settings, child), daemon=True)
        process.start()
        pipes[condition] = parent
        children.append(process)
    try:
        for pipe in pipes.values():
            pipe.recv()
        runs: dict[str, list[dict[str, Any]]] = {condition: [] for condition in CONDITIONS}
        for index in range(rounds + 1):  # the first round warms each up, unmeasured
            turn = index % len(CONDITIONS)
            for condition in CONDITIONS[turn:] + CONDITIONS[:turn]:
                pipes[condition].send(orders_per_round)
                found = pipes[condition].recv()
                if index:
                    runs[condition].append(found)
        for pipe in pipes.values():
            pipe.send(None)
    finally:
        for process in children:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return _metrics(runs, rounds, orders_per_round)


def _metrics(runs: dict[str, list[dict[str, Any]]], rounds: int, per_round: int) -> list[Metric]:
    pooled = {condition: _pooled(found) for condition, found in runs.items()}
    on, off, unsampled = pooled["on"], pooled["off"], pooled["unsampled"]
    parameters = {
        "rounds": rounds,
        "orders_per_round": per_round,
        "process": "one per condition, same database, taking turns (order rotating)",
        "exporter": "batch span processor -> OTLP protobuf encoding, bytes dropped",
        "per_round_cpu_ratio": {
            condition: [
                round(a["cpu_seconds"] / b["cpu_seconds"], 3) if b["cpu_seconds"] else None
                for a, b in zip(runs[condition], runs["off"], strict=True)
            ]
            for condition in ("on", "unsampled")
        },
    }
    baseline = Baseline("tracing off (no OTEL_*)", off["cpu_ms_per_order"])
    return [
        Metric(
            "order path, tracing on: CPU per order",
            on["cpu_ms_per_order"],
            "ms",
            "- (reported)",
            True,
            baseline,
            off["cpu_ms_per_order"] / on["cpu_ms_per_order"],
            parameters,
            pooled,
        ),
        Metric(
            "order path, tracing on, nothing sampled: CPU per order",
            unsampled["cpu_ms_per_order"],
            "ms",
            "- (reported)",
            True,
            baseline,
            off["cpu_ms_per_order"] / unsampled["cpu_ms_per_order"],
            parameters,
        ),
        Metric(
            "order path, tracing on: orders fulfilled per second (one process)",
            on["orders_per_s"],
            "orders/s",
            "- (reported)",
            True,
            Baseline("tracing off (no OTEL_*)", off["orders_per_s"]),
            on["orders_per_s"] / off["orders_per_s"] if off["orders_per_s"] else math.nan,
            parameters,
        ),
        Metric(
            "POST /api/orders, tracing on: latency p50 (in-process)",
            on["p50_ms"],
            "ms",
            "- (reported)",
            True,
            Baseline("tracing off (no OTEL_*) p50", off["p50_ms"]),
            off["p50_ms"] / on["p50_ms"] if on["p50_ms"] else None,
            parameters,
        ),
    ]


def _pooled(found: list[dict[str, Any]]) -> dict[str, Any]:
    orders = sum(run["orders"] for run in found)
    seconds = sum(run["seconds"] for run in found)
    cpu = sum(run["cpu_seconds"] for run in found)
    latencies = [latency for run in found for latency in run["post_latencies"]]
    return {
        "orders": orders,
        "orders_per_s": orders / seconds if seconds else math.nan,
        "cpu_ms_per_order": cpu * 1000 / orders if orders else math.nan,
        "p50_ms": ms(percentile(latencies, 50)),
        "p90_ms": ms(percentile(latencies, 90)),
        "p99_ms": ms(percentile(latencies, 99)),
        "spans_per_order": round(sum(run["spans"] for run in found) / orders, 1) if orders else 0,
        "passes_per_round": [run["passes"] for run in found],
        "per_round_orders_per_s": [round(run["orders"] / run["seconds"], 2) for run in found],
    }
