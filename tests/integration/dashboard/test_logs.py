"""JSON log lines: each request with its duration, and each commit's events with
their correlation and causation ids and the order they concern."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from config.bootstrap import Application
from kernel.logging import JsonFormatter
from tests.integration.dashboard.support import place, settle
from tests.support.api_client import Customer


class Lines(logging.Handler):
    """Formats at emit time, as the real handler does (the ids are bound then)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[list[dict[str, Any]]]:
    handler = Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_request_and_the_events_it_commits_log_one_json_line_each(
    client: FlaskClient,
    application: Application,
    catalog: None,
    ada: Customer,
    lines: list[dict[str, Any]],
) -> None:
    order = place(client, ada, {"MUG-1": 1})
    settle(application)
    client.get(f"/api/orders/{order.order_id}", headers=ada.headers | {"X-Correlation-ID": "t-1"})

    appended = next(line for line in lines if line["msg"] == "events appended")  # PlaceOrder's
    assert appended["event_types"] == ["OrderPlaced"]
    assert appended["order_id"] == order.order_id
    assert appended["correlation_id"]
    assert appended["causation_id"]  # the PlaceOrder command
    handled = next(line for line in lines if line["msg"] == "command handled")
    assert handled["command"] == "PlaceOrder"
    assert handled["correlation_id"] == appended["correlation_id"]
    assert handled["duration_ms"] >= 0
    requests = [line for line in lines if line["msg"] == "request"]
    assert [(r["method"], r["route"], r["status"]) for r in requests] == [
        ("POST", "/api/orders", 202),
        ("GET", "/api/orders/<uuid:order_id>", 200),
    ]
    assert requests[1]["correlation_id"] == "t-1"
    assert requests[1]["order_id"] == order.order_id
    assert requests[1]["duration_ms"] > 0
