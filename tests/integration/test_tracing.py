"""Tracing: one order is one trace, from its POST to the read models' writes, across the
saga, the payment call and the jobs; and with tracing off, nothing at all.

The traced application is built by the composition root like any other, with spans going
to an in-memory exporter; orders go through its API (Flask's test client), and its saga,
read models and payment calls run in this process through the workers' own job code
(`config.jobs.Jobs`) and the local Stripe.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text

from config.bootstrap import Application, bootstrap
from config.flask_app import create_app
from config.jobs import Jobs
from config.queues import EVERY_SUBSCRIPTION
from config.settings import Settings
from inventory.commands import AddProduct
from kernel.event_store import EventHeader
from kernel.money import Money
from kernel.results import Success
from kernel.tracing import NO_TRACING
from sagas.order_fulfillment import NAME as SAGA
from tests.support.payments import (
    AUTHENTICATION_REQUIRED,
    SUCCEEDS,
    WEBHOOK_PATH,
    authenticate,
    payment_intent,
    pending_charge,
    settle_payments,
    signed_headers,
    stripe_event,
)
from tests.support.polling import eventually
from tests.support.read_models import ALL_MODELS, lagging
from tests.support.shop import ADDRESS_DATA, PASSWORD
from tests.support.state import row_count

ORDERS = 3


@dataclass
class Traced:
    application: Application
    client: FlaskClient
    spans: InMemorySpanExporter


@pytest.fixture
def traced(settings: Settings) -> Iterator[Traced]:
    """An application with tracing on, its spans kept in memory."""
    spans = InMemorySpanExporter()
    application = bootstrap(settings, span_processor=SimpleSpanProcessor(spans))
    app = create_app(application)
    app.testing = True
    yield Traced(application, app.test_client(), spans)
    application.close()


def test_each_order_is_one_connected_trace_from_its_request_to_every_read_model(
    traced: Traced,
) -> None:
    application, client = traced.application, traced.client
    headers = _shop_with_a_customer(application, client)
    _fulfil(application)  # the customer directory's write joins the registration's trace
    traced.spans.clear()

    order_ids = [_place(client, headers) for _ in range(ORDERS)]
    _fulfil(application)

    spans = traced.spans.get_finished_spans()
    by_trace: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        assert span.context is not None
        by_trace.setdefault(span.context.trace_id, []).append(span)
    traces = set()
    for order_id in order_ids:
        events = _events_about(application, order_id)
        assert [e.type for e in events][-1] == "OrderConfirmed", [e.type for e in events]
        trace_ids = {_trace_id(e) for e in events}
        assert len(trace_ids) == 1, f"{order_id}: its events are in {len(trace_ids)} traces"
        (trace_id,) = trace_ids
        traces.add(trace_id)
        _assert_one_connected_trace(by_trace[trace_id], order_id)
        _assert_work_on_each_event_follows_it(application, by_trace[trace_id], events)
    assert len(traces) == ORDERS  # one trace per order, none shared
    # The jobs' own bookkeeping (horizon, checkpoints, leases) made no traces of its own.
    assert set(by_trace) == traces


def test_a_payment_deadline_compensates_in_the_orders_trace(
    traced: Traced, monkeypatch: pytest.MonkeyPatch
) -> None:
    application, client = traced.application, traced.client
    headers = _shop_with_a_customer(application, client)
    monkeypatch.setattr(application.saga.decide, "payment_timeout", timedelta(0))
    traced.spans.clear()

    order_id = _place(client, headers, AUTHENTICATION_REQUIRED)  # pending: nobody pays
    _fulfil(application)
    assert Jobs(application).payment_deadline(order_id)  # what the deadline's job runs
    _fulfil(application)

    events = _events_about(application, order_id)
    assert "OrderCancelled" in [e.type for e in events]
    (trace_id,) = {_trace_id(e) for e in events}
    spans = [s for s in traced.spans.get_finished_spans() if _trace_of(s) == trace_id]
    _assert_connected(spans)
    (deadline,) = [s for s in spans if s.name == f"{SAGA} payment deadline"]
    (asked,) = [e for e in events if e.type == "PaymentRequested"]
    assert deadline.parent is not None
    assert deadline.parent.span_id == _parent_span_id(asked)
    under = {s.name for s in spans if s.parent and s.parent.span_id == _span_id(deadline)}
    assert {"ReleaseInventory", "CancelOrder", "AbandonPayment"} <= under


def test_a_payment_completed_by_stripes_webhook_stays_in_the_orders_trace(
    traced: Traced, settings: Settings
) -> None:
    application, client = traced.application, traced.client
    headers = _shop_with_a_customer(application, client)
    traced.spans.clear()
    order_id = _place(client, headers, AUTHENTICATION_REQUIRED)
    _fulfil(application)  # the charge waits on 3-D Secure
    intent_id = pending_charge(application.engine, order_id)
    authenticate(settings, intent_id)  # the customer, at Stripe

    body = stripe_event("payment_intent.succeeded", payment_intent(settings, intent_id))
    assert settings.stripe_webhook_secret is not None
    answer = client.post(
        WEBHOOK_PATH, data=body, headers=signed_headers(settings.stripe_webhook_secret, body)
    )
    assert answer.get_json()["status"] == "accepted", answer.get_json()
    _fulfil(application)

    events = _events_about(application, order_id)
    assert [e.type for e in events][-1] == "OrderConfirmed", [e.type for e in events]
    (trace_id,) = {_trace_id(e) for e in events}  # Stripe's request did not split it
    spans = traced.spans.get_finished_spans()
    _assert_connected([s for s in spans if _trace_of(s) == trace_id])
    (webhook,) = [s for s in spans if s.name == "payment webhook"]
    (pending,) = [e for e in events if e.type == "PaymentPending"]
    assert webhook.parent is not None
    assert webhook.parent.span_id == _parent_span_id(pending)
    (request,) = [s for s in spans if s.name == "POST /webhooks/stripe"]
    assert [link.context.span_id for link in webhook.links] == [_span_id(request)]


def _assert_one_connected_trace(spans: list[ReadableSpan], order_id: str) -> None:
    _assert_connected(spans)
    names = Counter(span.name for span in spans)
    for step in (
        "PlaceOrder",
        f"{SAGA} OrderPlaced",
        "ReserveInventory",
        f"{SAGA} InventoryReserved",
        "ProcessPayment",
        "settle_payment",
        "payment provider charge",
        "RecordChargeOutcome",
        f"{SAGA} PaymentSucceeded",
        "ConfirmOrder",
        "order_detail apply OrderPlaced",
        "sales_analytics apply OrderConfirmed",
        "order_list apply OrderConfirmed",
        "catalog apply StockReserved",
    ):
        assert names[step] >= 1, f"{order_id}: no {step!r} span in {sorted(names)}"
    # OpenTelemetry's own instrumentations add the statements and Redis calls inside.
    systems = {span.attributes.get("db.system") for span in spans if span.attributes}
    assert {"postgresql", "redis"} <= systems
    about = {span.attributes.get("shop.order_id") for span in spans if span.attributes}
    assert about - {None} == {order_id}  # no other order's work in this trace


def _assert_connected(spans: list[ReadableSpan]) -> None:
    """One root, the order's request, and every other span's parent in the trace."""
    ids = {_span_id(span) for span in spans}
    roots = [span for span in spans if span.parent is None]
    assert [(r.name, r.kind) for r in roots] == [("POST /api/orders", SpanKind.SERVER)]
    orphans = [s.name for s in spans if s.parent is not None and s.parent.span_id not in ids]
    assert orphans == [], f"spans whose parent is not in the trace: {orphans}"


def _assert_work_on_each_event_follows_it(
    application: Application, spans: list[ReadableSpan], events: list[EventHeader]
) -> None:
    """The saga's step on each event, the payment call asked for and each read model's
    write of each event it handles: spans whose parent is the event's own context."""
    children: dict[int, set[str]] = {}
    for span in spans:
        if span.parent is not None:
            children.setdefault(span.parent.span_id, set()).add(span.name)
    readers = {
        model: application.read_side.subscribers(model)[0].event_types for model in ALL_MODELS
    }
    for event in events:
        expected = {
            f"{model} apply {event.type}"
            for model, types in readers.items()
            if types is not None and event.type in types
        }
        if event.type in application.saga.event_types:
            expected.add(f"{SAGA} {event.type}")
        if event.type == "PaymentRequested":
            expected.add("settle_payment")
        found = children.get(_parent_span_id(event), set())
        assert expected <= found, f"{event.type}: missing {expected - found}"


def test_with_tracing_off_nothing_is_traced_and_events_carry_no_trace_context(
    application: Application, app: Flask, client: FlaskClient
) -> None:
    assert application.settings.traces_exporters == ()  # no OTEL_* in the test settings
    assert application.tracing is None
    assert application.saga.tracing is NO_TRACING
    assert application.provider_calls.tracing is NO_TRACING
    assert application.payment_inbox.tracing is NO_TRACING
    # No tracer provider was installed, and nothing was instrumented.
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    for redis in (application.redis, application.queues.redis):
        assert not getattr(redis, "_is_instrumented_by_opentelemetry", False)
    with application.engine.connect() as conn:
        cursors = type(conn.connection.driver_connection.cursor())  # type: ignore[union-attr]
    assert cursors.__module__.startswith("psycopg")

    headers = _shop_with_a_customer(application, client)
    order_ids = [_place(client, headers) for _ in range(2)]
    _fulfil(application)

    for order_id in order_ids:
        assert [e.type for e in _events_about(application, order_id)][-1] == "OrderConfirmed"
    with application.engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE metadata ? 'traceparent'"
                " OR metadata ? 'tracestate'), count(*) FROM events"
            )
        ).one()
    assert stored[1] > 0
    assert stored[0] == 0


def _shop_with_a_customer(application: Application, client: FlaskClient) -> dict[str, str]:
    for product in (
        AddProduct("MUG-1", "Enamel mug", Money(1250, "EUR"), 100),
        AddProduct("TEE-1", "Logo T-shirt", Money(1999, "EUR"), 100),
    ):
        assert isinstance(application.bus.dispatch(product), Success)
    answer = client.post(
        "/api/customers", json={"email": "ada@example.com", "name": "Ada", "password": PASSWORD}
    )
    assert answer.status_code == 201, answer.get_json()
    return {"Authorization": f"Bearer {answer.get_json()['token']}"}


def _place(client: FlaskClient, headers: dict[str, str], payment: str = SUCCEEDS) -> str:
    body = {
        "lines": [{"sku": "MUG-1", "quantity": 2}, {"sku": "TEE-1", "quantity": 1}],
        "shipping_address": dict(ADDRESS_DATA),
        "payment": {"token": payment},
    }
    answer = client.post("/api/orders", json=body, headers=headers)
    assert answer.status_code == 202, answer.get_json()
    order_id: str = answer.get_json()["order_id"]
    return order_id


def _fulfil(application: Application) -> None:
    """Run what the workers run (the catch-up job of every subscription, the sweep's
    move of the synchronous read models' checkpoints, the payments workers' provider
    calls) until every subscription is at the head of the log and a further run appends
    nothing."""
    jobs = Jobs(application)
    synchronous = [p.name for p in application.read_side.projections.values() if p.mode == "sync"]

    def settled() -> None:
        before = row_count(application.engine, "events")
        jobs.catch_up(EVERY_SUBSCRIPTION)
        for name in synchronous:
            jobs.catch_up(name)
        settle_payments(application)
        assert lagging(application) == []
        assert row_count(application.engine, "events") == before

    eventually(settled, timeout=30, interval=0.01)


def _events_about(application: Application, order_id: str) -> list[EventHeader]:
    with application.engine.connect() as conn:
        return application.store.about(conn, order_id)


def _trace_id(event: EventHeader) -> int:
    assert event.metadata.traceparent, f"{event.type} carries no trace context"
    return int(event.metadata.traceparent.split("-")[1], 16)


def _parent_span_id(event: EventHeader) -> int:
    assert event.metadata.traceparent, f"{event.type} carries no trace context"
    return int(event.metadata.traceparent.split("-")[2], 16)


def _trace_of(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def _span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)
