"""A read model that cannot apply an event stops at it, says so, and resumes once fixed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from config.bootstrap import Application
from kernel.event_store import RecordedEvent
from kernel.write_batch import WriteBatch
from orders.events import OrderConfirmed
from projections.projection import PostgresHandlers, PostgresProjection
from tests.integration.projections.support import order_events
from tests.support.event_log import whole_log
from tests.support.read_models import contents, rebuilt_from_zero
from tests.support.shop import CATALOG, Shop


class Sabotaged(PostgresHandlers):
    """The read model's own handlers, but OrderConfirmed of one order raises."""

    def __init__(self, original: PostgresHandlers, order_id: str) -> None:
        super().__init__()
        self.original = original
        self.order_id = order_id

    @property
    def types(self) -> frozenset[str]:
        return self.original.types

    def handles(self, type_name: str) -> bool:
        return self.original.handles(type_name)

    def of(self, type_name: str) -> Callable[[Any, WriteBatch, int, RecordedEvent], None] | None:
        real = self.original.of(type_name)
        if type_name != "OrderConfirmed" or real is None:
            return real

        def failing(event: Any, writes: WriteBatch, gen: int, recorded: RecordedEvent) -> None:
            if isinstance(event, OrderConfirmed) and event.order_id == self.order_id:
                raise RuntimeError(f"cannot confirm {self.order_id}")
            real(event, writes, gen, recorded)

        return failing


def _status(client: FlaskClient, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get("/admin/api/projections", headers=headers)
    assert response.status_code == 200
    (found,) = [p for p in response.get_json()["projections"] if p["name"] == "order_detail"]
    return dict(found)


def test_a_failing_event_stops_the_read_model_at_it_and_it_resumes_once_fixed(
    application: Application,
    shop: Shop,
    client: FlaskClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop.add_products(CATALOG)
    ada = shop.customer("ada@example.com")
    orders = [shop.place(ada, {"MUG-1": n}) for n in (1, 2, 3)]
    for order in orders:
        shop.confirm(order)
    poison = orders[1]
    log = whole_log(application)
    ((_, _, failing),) = [
        e for e in order_events(application, poison.order_id) if e[0] == "OrderConfirmed"
    ]
    index = [recorded.position for recorded in log].index(failing)
    projection = application.read_side.projection("order_detail")
    assert isinstance(projection, PostgresProjection)
    monkeypatch.setattr(projection, "handlers", Sabotaged(projection.handlers, poison.order_id))
    subscriber = projection.subscriber(1)

    for _ in range(2):  # running again does not skip it either
        report = application.runner.run(subscriber)
        assert report.error == f"RuntimeError: cannot confirm {poison.order_id}"
        status = _status(client, admin_headers)
        assert status["state"] == f"failed at {failing}"
        assert status["failed_position"] == failing
        assert status["last_error"] == f"RuntimeError: cannot confirm {poison.order_id}"
        assert status["checkpoint"] == log[index - 1].checkpoint.token()
        assert status["lag_events"] == len(log) - index
        statuses = {
            row["order_id"]: row["document"]["status"]
            for row in contents(application, "order_detail", 1)["order_details"]
        }
        assert statuses == {
            orders[0].order_id: "confirmed",
            poison.order_id: "pending",
            orders[2].order_id: "pending",
        }

    monkeypatch.undo()
    report = application.runner.run(subscriber)

    assert report.error is None
    assert report.applied == len(log) - index
    status = _status(client, admin_headers)
    assert (status["state"], status["failed_position"], status["last_error"]) == (
        "caught_up",
        None,
        None,
    )
    assert (status["lag_events"], status["checkpoint"]) == (0, log[-1].checkpoint.token())
    stored = contents(application, "order_detail", 1)
    timelines = {
        row["order_id"]: [m["what"] for m in row["document"]["timeline"]]
        for row in stored["order_details"]
    }
    assert timelines == {order.order_id: ["placed", "confirmed"] for order in orders}
    assert stored == rebuilt_from_zero(application, "order_detail")
