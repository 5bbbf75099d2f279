"""Reading the event log back: how long it is, all of it, one event's data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from config.bootstrap import Application
from kernel.event_store import START, RecordedEvent
from tests.support.polling import eventually
from tests.support.state import row_count


def event_count(application: Application) -> int:
    return row_count(application.engine, "events")


def whole_log(application: Application) -> list[RecordedEvent]:
    """Every event in log order, once no writer holds the readable end of the log back
    (a bounded wait: a transaction still open elsewhere hides the events after it)."""

    def read() -> list[RecordedEvent]:
        with application.engine.connect() as conn, conn.begin():
            batch = application.store.read_all(conn, START, 1_000_000)
        assert len(batch) == event_count(application), "a writer still holds the log back"
        return batch

    return eventually(read, timeout=30, interval=0.05)


def event_data(application: Application, order_id: str, event_type: str) -> dict[str, Any]:
    """The data of the one `event_type` event about the order."""
    with application.engine.connect() as conn:
        data: dict[str, Any] = conn.execute(
            text("SELECT data FROM events WHERE data ->> 'order_id' = :id AND type = :type"),
            {"id": order_id, "type": event_type},
        ).scalar_one()
    return data
