"""OpenTelemetry tracing: one order, one trace, across the API, the workers and the jobs.

Off unless the environment asks for it (config.settings: an OTEL_* variable such as
OTEL_TRACES_EXPORTER or OTEL_EXPORTER_OTLP_ENDPOINT): then `bootstrap` gets None here,
installs nothing and adds nothing to any path. On, it builds a tracer provider of its
own (never the process-global one, so nothing outside the application it is handed to
records spans) and the composition root wires it in:

- each command dispatched is a span (the command bus middleware `command`), the child of
  the current span (the HTTP request, a saga step, a payment call) or else of the trace
  context its metadata carries; the metadata it passes on carries the span's context, so
  every event the command appends stores it (kernel.messages.Metadata.traceparent);
- work done because of an event is a span whose parent is that context, never the RQ
  job's (a job is deduplicated and serves many orders): the saga's step per event, the
  payment provider call and what Stripe's webhook records (`following`, through the
  kernel.tracing port), and each read model's write of each event (`read_model`,
  `sync_read_models`);
- the Flask app, the engine's connections and the Redis clients are instrumented with
  OpenTelemetry's own instrumentations, on these objects only.

Spans go through a batch processor to the exporters OTEL_TRACES_EXPORTER names (OTLP
over HTTP by default); the SDK reads every other OTEL_* variable itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import Any

from flask import Flask
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes
from redis import Redis
from sqlalchemy import Connection, Engine, event

from config.settings import Settings
from kernel.command_bus import BeforeCommit, Next
from kernel.event_store import Checkpoint, RecordedEvent
from kernel.leases import Lease
from kernel.messages import Command, Metadata
from kernel.money import Money
from kernel.results import Failure, Result
from kernel.subscriptions import Subscriber
from kernel.tracing import Attributes as SpanAttributes
from payments.gateway import (
    ChargeRequest,
    ChargeResult,
    CustomerAction,
    PaymentGateway,
    RefundResult,
)
from projections.projection import PostgresProjection
from projections.read_side import ReadSide

SERVICE = "cqrs-shop"
"""service.name when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES names one."""
UNTRACED_URLS = "/healthz$,/readyz$,/metrics$"
"""Probes and scrapes make no traces (unless OTEL_PYTHON_[FLASK_]EXCLUDED_URLS says)."""
_W3C = TraceContextTextMapPropagator()


class ShopTracing:
    """The shop's spans, made with its own tracer provider."""

    enabled = True

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("cqrs_shop")

    # --- the command bus, the saga and the payment calls -------------------------------

    def command(self, command: Command, metadata: Metadata, call_next: Next) -> Result:
        """Command-bus middleware: the command's span, whose context the metadata handed
        on (and so every event the command appends) carries."""
        name = type(command).__name__
        parent = None  # the current span: the request, the saga's step, the payment call
        if not get_current_span().get_span_context().is_valid:
            parent = context_of(metadata)
        attributes = {
            "shop.command": name,
            "shop.message_id": metadata.message_id,
            "shop.correlation_id": metadata.correlation_id,
            "shop.actor": metadata.actor,
        }
        order_id = getattr(command, "order_id", None)
        if isinstance(order_id, str):
            attributes["shop.order_id"] = order_id
        with self.tracer.start_as_current_span(name, parent, attributes=attributes) as span:
            carrier: dict[str, str] = {}
            _W3C.inject(carrier)
            traced = replace(
                metadata,
                traceparent=carrier.get("traceparent"),
                tracestate=carrier.get("tracestate"),
            )
            result = call_next(command, traced)
            # A refusal is an answer, not an error: it is told, the span stays ok.
            span.set_attribute("shop.outcome", "ok" if result.ok else _code(result))
            return result

    def following(
        self, cause: Metadata | None, name: str, attributes: SpanAttributes
    ) -> AbstractContextManager[object]:
        if cause is None or not cause.traceparent:
            parent = None  # the current span's child, or else a new trace's root
            links = None
        else:
            parent = context_of(cause)
            # Begun inside another trace's span (a webhook's request): linked to it.
            current = get_current_span().get_span_context()
            links = [Link(current)] if current.is_valid else None
        return self.tracer.start_as_current_span(
            name, parent, SpanKind.CONSUMER, attributes=dict(attributes), links=links
        )

    def gateway(self, gateway: PaymentGateway) -> PaymentGateway:
        """`gateway`, each call to the provider a client span."""
        return TracedGateway(gateway, self)

    # --- read models ------------------------------------------------------------------

    def written(
        self,
        model: str,
        events: Sequence[RecordedEvent],
        started_ns: int,
        ended_ns: int,
        attributes: SpanAttributes,
    ) -> None:
        """A span per event a read model wrote, in the event's trace. A batch is written
        at once (one round trip, one commit), so each event's span covers the whole
        batch's write: `shop.batch.size` says how many shared it. Events without trace
        context (stored while tracing was off) make none: they have no trace to join."""
        for recorded in events:
            metadata = recorded.decoded_metadata
            if metadata is None or not metadata.traceparent:
                continue  # not read (a type the model passes over), or not traced
            span = self.tracer.start_span(
                f"{model} apply {recorded.type}",
                context_of(metadata),
                SpanKind.CONSUMER,
                attributes={
                    "shop.read_model": model,
                    "shop.event.type": recorded.type,
                    "shop.event.id": metadata.message_id,
                    "shop.event.position": recorded.position,
                    "shop.batch.size": len(events),
                    **attributes,
                },
                start_time=started_ns,
            )
            span.end(ended_ns)

    def read_model(self, model: str, subscriber: Subscriber) -> Subscriber:
        """An asynchronous read model's subscriber whose every applied batch becomes spans
        (see `written`)."""
        return TracedReadModel(model, subscriber, self)

    def sync_read_models(self, read_side: ReadSide) -> BeforeCommit:
        """`read_side.apply_sync` (the command's own transaction writing the synchronous
        read models), each model's write of each event a span in the command's trace."""
        synchronous = [
            projection
            for projection in read_side.projections.values()
            if projection.mode == "sync" and isinstance(projection, PostgresProjection)
        ]

        def apply(conn: Connection, events: Sequence[RecordedEvent]) -> None:
            started = time.time_ns()
            read_side.apply_sync(conn, events)
            ended = time.time_ns()
            for projection in synchronous:
                handled = [e for e in events if projection.handlers.handles(e.type)]
                self.written(projection.name, handled, started, ended, {"shop.sync": True})

        return apply

    # --- OpenTelemetry's instrumentations, of the application's own objects only --------

    def instrument_engine(self, engine: Engine) -> None:
        """A client span per statement on the engine's connections (each connection is
        instrumented as it is opened)."""

        @event.listens_for(engine, "connect")
        def traced(connection: Any, _record: Any) -> None:
            PsycopgInstrumentor.instrument_connection(connection, tracer_provider=self.provider)

    def instrument_redis(self, *clients: Redis) -> None:
        for client in clients:
            RedisInstrumentor.instrument_client(client, tracer_provider=self.provider)

    def instrument_app(self, app: Flask) -> None:
        """A server span per request (joining a caller's `traceparent` header)."""
        FlaskInstrumentor.instrument_app(  # type: ignore[no-untyped-call]
            app,
            tracer_provider=self.provider,
            excluded_urls=None if _excluded_urls_set() else UNTRACED_URLS,
            enable_commenter=False,
        )

    def shutdown(self) -> None:
        """Export what is buffered, then stop."""
        self.provider.shutdown()


def start_tracing(
    settings: Settings, span_processor: SpanProcessor | None = None
) -> ShopTracing | None:
    """Tracing as the settings ask for (None: off), or into `span_processor` (tests and
    the bench hand one in; it turns tracing on whatever the settings say)."""
    if span_processor is None and not settings.traces_exporters:
        return None
    configured = TracerProvider(shutdown_on_exit=False).sampler  # as OTEL_TRACES_SAMPLER says
    provider = TracerProvider(sampler=InsideTraces(configured), resource=_resource())
    if span_processor is not None:
        provider.add_span_processor(span_processor)
    else:
        for name in settings.traces_exporters:
            provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    return ShopTracing(provider)


def context_of(cause: Metadata | None) -> Context:
    """The trace context a message carries; an empty context (a new trace) if none."""
    if cause is None or not cause.traceparent:
        return Context()
    carrier = {"traceparent": cause.traceparent}
    if cause.tracestate:
        carrier["tracestate"] = cause.tracestate
    return _W3C.extract(carrier, Context())


class InsideTraces(Sampler):
    """The configured sampler, except that a database or Redis call outside any span is
    not recorded: the workers' own bookkeeping (catch-up loops, lease renewals, RQ's
    polling, the API's progress watcher) belongs to no order, and as roots those calls
    would bury the orders' traces under a trace per statement."""

    def __init__(self, configured: Sampler) -> None:
        self.configured = configured

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        if kind is SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self.configured.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"InsideTraces{{{self.configured.get_description()}}}"


class TracedReadModel:
    """A read model's subscriber (see `ShopTracing.written`); everything else as the
    subscriber it wraps. Spans follow a successful `apply` only: what the runner did not
    get applied, it retries or records as the subscription's error."""

    def __init__(self, model: str, subscriber: Subscriber, tracing: ShopTracing) -> None:
        self.model = model
        self.subscriber = subscriber
        self.tracing = tracing
        self.name = subscriber.name

    @property
    def event_types(self) -> frozenset[str] | None:
        return self.subscriber.event_types

    def checkpoint(self, conn: Connection, partition: int = 0) -> Checkpoint:
        return self.subscriber.checkpoint(conn, partition)

    def apply(
        self,
        conn: Connection,
        events: Sequence[RecordedEvent],
        lease: Lease,
        after: Checkpoint | None = None,
    ) -> None:
        started = time.time_ns()
        self.subscriber.apply(conn, events, lease, after)
        attributes: SpanAttributes = {
            "shop.subscription": self.name,
            "shop.partition": lease.partition,
        }
        self.tracing.written(self.model, events, started, time.time_ns(), attributes)

    def __getattr__(self, name: str) -> Any:
        # What the runner asks of particular subscribers (`appends_to_its_log`, ...).
        return getattr(self.subscriber, name)


class TracedGateway:
    """A payment gateway whose every call is a client span: the provider call of the
    order's trace."""

    def __init__(self, gateway: PaymentGateway, tracing: ShopTracing) -> None:
        self.gateway = gateway
        self.tracer = tracing.tracer

    def charge(self, request: ChargeRequest) -> ChargeResult:
        with self._call("charge", request.order_id, request.idempotency_key) as span:
            result = self.gateway.charge(request)
            span.set_attribute("shop.outcome", result.status)
            return result

    def charge_status(self, reference: str) -> ChargeResult:
        with self._call("look_up", reference=reference) as span:
            result = self.gateway.charge_status(reference)
            span.set_attribute("shop.outcome", result.status)
            return result

    def customer_action(self, reference: str) -> CustomerAction:
        with self._call("customer_action", reference=reference):
            return self.gateway.customer_action(reference)

    def fence(self, request: ChargeRequest) -> ChargeResult:
        with self._call("fence", request.order_id, request.idempotency_key) as span:
            result = self.gateway.fence(request)
            span.set_attribute("shop.outcome", result.status)
            return result

    def cancel(self, reference: str, idempotency_key: str) -> ChargeResult:
        with self._call("cancel", key=idempotency_key, reference=reference) as span:
            result = self.gateway.cancel(reference, idempotency_key)
            span.set_attribute("shop.outcome", result.status)
            return result

    def refund(
        self, order_id: str, charge_reference: str, amount: Money, idempotency_key: str
    ) -> RefundResult:
        with self._call("refund", order_id, idempotency_key, charge_reference) as span:
            result = self.gateway.refund(order_id, charge_reference, amount, idempotency_key)
            span.set_attribute("shop.outcome", result.status)
            return result

    @contextmanager
    def _call(
        self, call: str, order_id: str = "", key: str = "", reference: str = ""
    ) -> Iterator[Any]:
        attributes = {"shop.payment.call": call}
        for name, value in (
            ("shop.order_id", order_id),
            ("shop.idempotency_key", key),
            ("shop.payment.reference", reference),
        ):
            if value:
                attributes[name] = value
        with self.tracer.start_as_current_span(
            f"payment provider {call}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            yield span


def _code(result: Result) -> str:
    return result.code if isinstance(result, Failure) else "ok"


def _resource() -> Resource:
    """OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, as the SDK reads them; the shop's
    name when they name no service."""
    resource = Resource.create()
    named = str(resource.attributes.get(SERVICE_NAME, ""))
    if not named or named.startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: SERVICE}))
    return resource


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    # Its endpoint, headers, timeout and compression come from OTEL_EXPORTER_OTLP_*.
    return OTLPSpanExporter()


def _excluded_urls_set() -> bool:
    return any(
        os.environ.get(name)
        for name in ("OTEL_PYTHON_FLASK_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS")
    )
