"""A read model that cannot apply an event stops at it, says so, and resumes once fixed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from config.bootstrap import Application
from kernel.event_store import START, RecordedEvent
from kernel.partitions import partition_of
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


def _place(token: str) -> tuple[int, ...]:
    return tuple(int(part) for part in token.split("."))


def _last_token(events: list[RecordedEvent]) -> str:
    """The checkpoint token of a partition that applied `events` (START if none)."""
    return (events[-1].checkpoint if events else START).token()


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
    count = application.settings.subscription_partitions
    stopped = partition_of(log[index].slot, count)  # the other partitions carry on
    in_partition = [
        [recorded for recorded in log if partition_of(recorded.slot, count) == p]
        for p in range(count)
    ]
    applied, behind = (
        [recorded for recorded in events if partition_of(recorded.slot, count) == stopped]
        for events in (log[:index], log[index:])
    )
    error = f"RuntimeError: cannot confirm {poison.order_id}"

    for _ in range(2):  # running again does not skip it either
        report = application.runner.run(subscriber)
        assert report.error == error
        status = _status(client, admin_headers)
        assert status["state"] == f"failed at {failing}"
        assert status["failed_position"] == failing
        assert status["last_error"] == error
        assert status["lag_events"] == len(behind)
        parts = status["partitions"]
        assert [part["partition"] for part in parts] == list(range(count))
        for part in parts:
            if part["partition"] == stopped:
                assert (part["state"], part["failed_position"], part["last_error"]) == (
                    f"failed at {failing}",
                    failing,
                    error,
                )
                assert part["checkpoint"] == _last_token(applied)
                assert part["lag_events"] == len(behind)
            else:
                assert (part["state"], part["lag_events"], part["last_error"]) == (
                    "caught_up",
                    0,
                    None,
                )
                assert part["checkpoint"] == _last_token(in_partition[part["partition"]])
            assert part["holder"] is None  # the runner let go, failed or not
        # The subscription's checkpoint is the least of its partitions'.
        assert status["checkpoint"] == min((part["checkpoint"] for part in parts), key=_place)
        statuses = {
            row["order_id"]: row["document"]["status"]
            for row in contents(application, "order_detail", 1)["order_details"]
        }
        stuck = {recorded.data.get("order_id") for recorded in behind}
        assert statuses == {
            order.order_id: "pending" if order.order_id in stuck else "confirmed"
            for order in orders
        }
        assert statuses[poison.order_id] == "pending"

    monkeypatch.undo()
    report = application.runner.run(subscriber)

    assert report.error is None
    assert report.applied == len(behind)  # the other partitions had applied theirs
    status = _status(client, admin_headers)
    assert (status["state"], status["failed_position"], status["last_error"]) == (
        "caught_up",
        None,
        None,
    )
    assert status["lag_events"] == 0
    assert [part["checkpoint"] for part in status["partitions"]] == [
        _last_token(events) for events in in_partition
    ]
    assert {part["state"] for part in status["partitions"]} == {"caught_up"}
    stored = contents(application, "order_detail", 1)
    timelines = {
        row["order_id"]: [m["what"] for m in row["document"]["timeline"]]
        for row in stored["order_details"]
    }
    assert timelines == {order.order_id: ["placed", "confirmed"] for order in orders}
    assert stored == rebuilt_from_zero(application, "order_detail")
