"""Scenario 9: a read model that cannot apply one event stops at it and says so on the
admin API (`failed at P` with the error); the other subscriptions go on; once the cause
is removed it resumes by itself and ends equal to a fresh rebuild."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import text

from config.bootstrap import Application
from config.settings import Settings
from kernel.horizon import declare_writer
from kernel.partitions import partition_of, slot_of
from tests.faults.support import (
    assert_read_models_equal_rebuild,
    assert_sagas_exactly_once,
    settled,
    start_api,
)
from tests.support.api_client import ApiClient
from tests.support.event_log import whole_log
from tests.support.polling import eventually
from tests.support.processes import Processes, wait_for_workers
from tests.support.read_models import contents

PLANT = """
CREATE FUNCTION fault_refuse_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.customer_id = '{customer}' THEN
        RAISE EXCEPTION 'planted fault: order % cannot be stored', NEW.order_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER fault_refuse_order BEFORE INSERT ON order_details
    FOR EACH ROW EXECUTE FUNCTION fault_refuse_order();
"""
REMOVE = """
DROP TRIGGER fault_refuse_order ON order_details;
DROP FUNCTION fault_refuse_order();
"""


def _projections(api: ApiClient) -> dict[str, dict[str, Any]]:
    reply = api("GET", "/admin/api/projections", headers=api.admin)
    assert reply.status == 200, reply.body
    return {p["name"]: p for p in reply.body["projections"]}


def test_a_read_model_stops_at_an_event_it_cannot_apply_reports_it_and_resumes_once_fixed(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    api, _, env = start_api(processes, settings, SWEEP_INTERVAL="1", PAYMENT_TIMEOUT="10")
    api.add_product("MUG-1", amount=1250, stock=10_000)
    poisoner = api.register("poison@example.com")
    headers = api.register("plain@example.com").headers
    worker = processes.worker(env)
    wait_for_workers(settings.require()[1], [worker])
    before = [api.place(headers, {"MUG-1": 1}).body["order_id"] for _ in range(3)]
    settled(application, timeout=30)
    with application.engine.begin() as conn:
        conn.execute(text(PLANT.format(customer=poisoner.customer_id)))
    try:
        poison = api.place(poisoner.headers, {"MUG-1": 2})
        poisoned = _partition(settings, poison.body["order_id"])
        # Later orders in the poisoned partition and in others (ids are random).
        after: list[str] = []
        while len(after) < 40 and len({_partition(settings, o) == poisoned for o in after}) < 2:
            after.append(api.place(headers, {"MUG-1": 1}).body["order_id"])
        stuck = [o for o in after if _partition(settings, o) == poisoned]
        assert stuck and len(stuck) < len(after)
        placed_at = next(
            r.position
            for r in whole_log(application)
            if r.type == "OrderPlaced" and r.data["order_id"] == poison.body["order_id"]
        )

        def stopped_at_the_poison() -> dict[str, dict[str, Any]]:
            found = _projections(api)
            detail = found["order_detail"]
            assert detail["state"] == f"failed at {placed_at}", detail
            for name in ("catalog", "sales_analytics", "order_list"):
                assert found[name]["state"] == "caught_up", found[name]
            sagas = api("GET", "/admin/api/sagas?state=completed", headers=api.admin)
            orders = len(before) + 1 + len(after)
            assert sagas.body["counts"]["completed"] == orders, sagas.body["counts"]
            return found

        found = eventually(stopped_at_the_poison, timeout=30)
        detail = found["order_detail"]
        assert "planted fault: order" in detail["last_error"], detail
        assert detail["failed_position"] == placed_at
        assert detail["lag_events"] > 0
        stored = {
            row["order_id"] for row in contents(application, "order_detail", 1)["order_details"]
        }
        # Its partition stopped there; the other partitions went on.
        assert stored == set(before) | (set(after) - set(stuck)), "it went past the event"
        # The other read models and the saga went on: the orders after it are confirmed.
        listed = api("GET", "/admin/api/orders?limit=100", headers=api.admin).body["items"]
        statuses = {item["order_id"]: item["status"] for item in listed}
        assert all(statuses[order_id] == "confirmed" for order_id in after), statuses
        assert statuses[poison.body["order_id"]] == "confirmed"
        # A reader of a later order is told the read model is behind, never a wrong answer.
        later = api("GET", f"/api/orders/{stuck[-1]}", headers=headers)
        assert later.status == 404 and int(later.headers["X-Read-Model-Lag"]) > 0
        time.sleep(2)  # sweeps retry it meanwhile; it stays stopped at the same event
        assert _projections(api)["order_detail"]["failed_position"] == placed_at
    finally:
        with application.engine.begin() as conn:
            conn.execute(text(REMOVE))
    fixed = time.monotonic()

    def resumed() -> None:
        detail = _projections(api)["order_detail"]
        assert (detail["state"], detail["last_error"], detail["lag_events"]) == (
            "caught_up",
            None,
            0,
        )

    eventually(resumed, timeout=30)
    resumed_after = time.monotonic() - fixed
    settled(application, timeout=30)
    documents = contents(application, "order_detail", 1)["order_details"]
    assert {row["order_id"] for row in documents} == {*before, poison.body["order_id"], *after}
    assert_sagas_exactly_once(application)
    assert_read_models_equal_rebuild(application)
    figures.update(
        poison_position=placed_at,
        orders=len(before) + 1 + len(after),
        held_back_in_its_partition=len(stuck),
        seconds_to_resume_after_fix=round(resumed_after, 1),
    )


def _partition(settings: Settings, order_id: str) -> int:
    return partition_of(slot_of(order_id), settings.subscription_partitions)


def test_an_event_no_reader_can_decode_is_reported_at_its_position(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    """The same promise for an event whose stored payload no longer decodes (as after a
    deploy that added a required field without an upcaster): every subscription stops
    at it and the admin API names its position and the error."""
    api, _, env = start_api(processes, settings, SWEEP_INTERVAL="1", PAYMENT_TIMEOUT="10")
    api.add_product("MUG-1", amount=1250, stock=10_000)
    headers = api.register("decode@example.com").headers
    worker = processes.worker(env)
    wait_for_workers(settings.require()[1], [worker])
    order_id = api.place(headers, {"MUG-1": 1}).body["order_id"]
    settled(application, timeout=30)
    with application.engine.begin() as conn:
        declare_writer(conn)
        stream_id, stream_type, version, metadata = conn.execute(
            text(
                "SELECT stream_id, stream_type, version, metadata FROM events"
                " WHERE data ->> 'order_id' = :id AND type = 'OrderConfirmed'"
            ),
            {"id": order_id},
        ).one()
        metadata["message_id"] = "00000000-0000-4000-8000-00000000dead"
        position = conn.execute(
            text(
                "INSERT INTO events (stream_id, stream_type, version, type, schema_version,"
                " data, metadata, partition_key, slot) VALUES (:stream, :type, :version,"
                " 'OrderCancelled', 1, CAST(:data AS jsonb), CAST(:metadata AS jsonb),"
                " :order_id, :slot) RETURNING position"
            ),
            {
                "order_id": order_id,
                "slot": slot_of(order_id),
                "stream": stream_id,
                "type": stream_type,
                "version": version + 1,
                "data": json.dumps({"order_id": order_id}),
                "metadata": json.dumps(metadata),
            },
        ).scalar_one()
    api.place(headers, {"MUG-1": 1})  # wakes the workers

    def reported() -> None:
        found = _projections(api)
        for name in ("order_detail", "sales_analytics", "order_list"):
            assert found[name]["state"] == f"failed at {position}", found[name]
            assert found[name]["last_error"], found[name]

    try:
        eventually(reported, timeout=10)
    finally:
        figures.update(
            poison_position=position, states={n: p["state"] for n, p in _projections(api).items()}
        )
