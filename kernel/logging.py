"""Structured logs: one JSON object per line, carrying the current correlation id."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_correlation: ContextVar[tuple[str | None, str | None]] = ContextVar(
    "correlation", default=(None, None)
)

# Attributes every LogRecord has; anything else was passed with `extra=`.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


@contextlib.contextmanager
def bind_correlation(correlation_id: str | None, causation_id: str | None = None) -> Iterator[None]:
    """Tag every log line written inside the block with these ids."""
    token = _correlation.set((correlation_id, causation_id))
    try:
        yield
    finally:
        _correlation.reset(token)


def current_correlation_id() -> str | None:
    return _correlation.get()[0]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        correlation_id, causation_id = _correlation.get()
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if correlation_id:
            line["correlation_id"] = correlation_id
        if causation_id:
            line["causation_id"] = causation_id
        line.update((key, value) for key, value in record.__dict__.items() if key not in _STANDARD)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines (idempotent)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root.handlers = [handler]
    root.setLevel(level)
