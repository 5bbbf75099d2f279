"""Metadata as stored: samples of what the event store holds must keep reading back."""

from __future__ import annotations

from datetime import UTC, datetime

from kernel.messages import Metadata

STORED_BEFORE_TRACING = {
    "message_id": "5f0c8f3e-8a3b-4c2e-9d7a-1b2c3d4e5f60",
    "correlation_id": "corr-1",
    "causation_id": "0e1d2c3b-4a59-4867-8796-a5b4c3d2e1f0",
    "actor": "customer:42",
    "occurred_at": "2026-11-02T10:15:30.123456+00:00",
}
"""The metadata of every event stored before trace context was added (and of every event
stored while tracing is off)."""

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_metadata_stored_without_trace_context_still_reads() -> None:
    metadata = Metadata.from_json(dict(STORED_BEFORE_TRACING))

    assert metadata == Metadata(
        message_id="5f0c8f3e-8a3b-4c2e-9d7a-1b2c3d4e5f60",
        correlation_id="corr-1",
        causation_id="0e1d2c3b-4a59-4867-8796-a5b4c3d2e1f0",
        actor="customer:42",
        occurred_at=datetime(2026, 11, 2, 10, 15, 30, 123456, tzinfo=UTC),
    )
    assert (metadata.traceparent, metadata.tracestate) == (None, None)


def test_without_trace_context_the_stored_shape_is_unchanged() -> None:
    assert Metadata.from_json(dict(STORED_BEFORE_TRACING)).to_json() == STORED_BEFORE_TRACING


def test_trace_context_is_stored_and_read_back() -> None:
    traced = Metadata(actor="tester", traceparent=TRACEPARENT, tracestate="shop=1")

    stored = traced.to_json()

    assert (stored["traceparent"], stored["tracestate"]) == (TRACEPARENT, "shop=1")
    assert Metadata.from_json(stored) == traced
    assert "tracestate" not in Metadata(traceparent=TRACEPARENT).to_json()


def test_the_events_a_command_causes_carry_its_trace_context() -> None:
    command = Metadata(actor="tester", traceparent=TRACEPARENT, tracestate="shop=1")

    event = command.caused()

    assert (event.traceparent, event.tracestate) == (TRACEPARENT, "shop=1")
    assert event.causation_id == command.message_id
