"""Scenario 9: a read model that cannot apply one order's event retries it a bounded
number of times (`failed at P` meanwhile), then parks that order and goes on with every
other order, its partition's included; the other subscriptions never stop; once the
cause is removed an operator retries the parked order and the read model ends equal to
a fresh rebuild."""

from __future__ import annotations

import getpass
import json
import subprocess
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
from tests.support.processes import BIN, Processes, wait_for_workers
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


def test_a_read_model_parks_the_order_it_cannot_apply_goes_on_with_the_others_and_retries_it(
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
        poison_id = poison.body["order_id"]
        planted = time.monotonic()
        poisoned = _partition(settings, poison_id)
        # Later orders in the poisoned partition and in others (ids are random).
        after: list[str] = []
        while len(after) < 40 and len({_partition(settings, o) == poisoned for o in after}) < 2:
            after.append(api.place(headers, {"MUG-1": 1}).body["order_id"])
        same_partition = [o for o in after if _partition(settings, o) == poisoned]
        assert same_partition and len(same_partition) < len(after)
        placed_at = next(
            r.position
            for r in whole_log(application)
            if r.type == "OrderPlaced" and r.data["order_id"] == poison_id
        )

        def parked_and_the_rest_flowed() -> dict[str, Any]:
            found = _projections(api)
            detail = found["order_detail"]
            assert (detail["state"], detail["parked_keys"], detail["lag_events"]) == (
                "caught_up", 1, 0
            ), detail  # fmt: skip
            for name in ("catalog", "sales_analytics", "order_list"):
                assert (found[name]["state"], found[name]["parked_keys"]) == ("caught_up", 0)
            sagas = api("GET", "/admin/api/sagas?state=completed", headers=api.admin)
            orders = len(before) + 1 + len(after)
            assert sagas.body["counts"]["completed"] == orders, sagas.body["counts"]
            parked = api("GET", "/admin/api/parked", headers=api.admin)
            assert parked.status == 200, parked.body
            return dict(parked.body)

        parked = eventually(parked_and_the_rest_flowed, timeout=30)
        parked_after = time.monotonic() - planted
        (item,) = parked["items"]
        assert (item["subscription"], item["key"], item["failed_position"]) == (
            "order_detail@1", poison_id, placed_at
        )  # fmt: skip
        assert "planted fault: order" in item["error"], item
        assert item["attempts"] == settings.park_after
        stored = {
            row["order_id"] for row in contents(application, "order_detail", 1)["order_details"]
        }
        # Every other order went on, in its partition too; the poisoned one waits, parked.
        assert stored == set(before) | set(after), "an order other than the poisoned one waits"
        listed = api("GET", "/admin/api/orders?limit=100", headers=api.admin).body["items"]
        statuses = {entry["order_id"]: entry["status"] for entry in listed}
        assert all(statuses[order_id] == "confirmed" for order_id in after), statuses
        assert statuses[poison_id] == "confirmed"
        # Its reader is told nothing wrong: the order is not in the detail read model.
        assert api("GET", f"/api/orders/{poison_id}", headers=poisoner.headers).status == 404
        url = f"/admin/api/parked/order_detail@1/{poison_id}/retry"
        refused = api("POST", url, {"reason": "before the fix"}, headers=api.admin)
        assert refused.status == 409, refused.body
    finally:
        with application.engine.begin() as conn:
            conn.execute(text(REMOVE))
    fixed = time.monotonic()
    retried = api("POST", url, {"reason": "trigger removed"}, headers=api.admin)
    assert retried.status == 200, retried.body
    assert retried.body["applied"] >= 2  # its OrderPlaced and OrderConfirmed at least
    resumed_after = time.monotonic() - fixed
    assert api("GET", "/admin/api/parked", headers=api.admin).body["items"] == []
    settled(application, timeout=30)
    documents = contents(application, "order_detail", 1)["order_details"]
    assert {row["order_id"] for row in documents} == {*before, poison_id, *after}
    assert api("GET", f"/api/orders/{poison_id}", headers=poisoner.headers).status == 200
    assert_sagas_exactly_once(application)
    assert_read_models_equal_rebuild(application)
    figures.update(
        poison_position=placed_at,
        orders=len(before) + 1 + len(after),
        orders_in_its_partition_that_went_on=len(same_partition),
        seconds_to_park=round(parked_after, 1),
        seconds_to_apply_after_fix=round(resumed_after, 1),
    )


def _partition(settings: Settings, order_id: str) -> int:
    return partition_of(slot_of(order_id), settings.subscription_partitions)


def test_an_event_no_reader_can_decode_parks_its_order_everywhere_and_is_skipped_with_a_reason(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    """The same promise for an event whose stored payload no longer decodes (as after a
    deploy that added a required field without an upcaster): every subscription that
    reads it parks its order, the admin API names its position and the error, later
    orders go on, and an operator skips it with a reason."""
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
    later = api.place(headers, {"MUG-1": 1}).body["order_id"]  # wakes the workers too
    started = time.monotonic()

    def parked_everywhere() -> list[dict[str, Any]]:
        found = _projections(api)
        for name in ("order_detail", "sales_analytics", "order_list"):
            assert (found[name]["state"], found[name]["parked_keys"]) == ("caught_up", 1)
        parked = api("GET", "/admin/api/parked", headers=api.admin).body["items"]
        assert {p["subscription"] for p in parked} == {
            "order_detail@1", "sales_analytics@1", "order_list@1", "order_fulfillment"
        }  # fmt: skip
        return list(parked)

    try:
        parked = eventually(parked_everywhere, timeout=30)
    finally:
        figures.update(
            poison_position=position, states={n: p["state"] for n, p in _projections(api).items()}
        )
    figures.update(seconds_to_park_everywhere=round(time.monotonic() - started, 1))
    for item in parked:
        assert (item["key"], item["failed_position"], item["event_type"]) == (
            order_id, position, "OrderCancelled"
        )  # fmt: skip
        assert item["error"].startswith("OrderCancelled: "), item

    # The order placed after it went on everywhere.
    def confirmed() -> None:
        shown = api("GET", f"/api/orders/{later}", headers=headers)
        assert shown.status == 200, shown.body
        assert shown.body["order"]["status"] == "confirmed", shown.body

    eventually(confirmed, timeout=30)
    # The operator's command line lists them and skips one; the API skips the others.
    listed = _shop(env, "parked", "list")
    assert all(item["subscription"] in listed and order_id in listed for item in parked), listed
    reason = "written by hand during an incident"
    skipped_here = _shop(env, "parked", "skip", "order_list@1", order_id, "--reason", reason)
    assert f"skipped 1 event(s) of {order_id}" in skipped_here
    for item in parked:
        if item["subscription"] == "order_list@1":
            continue
        skipped = api(
            "POST",
            f"/admin/api/parked/{item['subscription']}/{order_id}/skip",
            {"reason": "written by hand during an incident"},
            headers=api.admin,
        )
        assert (skipped.status, skipped.body.get("skipped")) == (200, 1), skipped.body
    assert api("GET", "/admin/api/parked", headers=api.admin).body["items"] == []
    with application.engine.connect() as conn:
        actors = set(
            conn.execute(
                text("SELECT actor FROM parking_actions WHERE action = 'skipped'")
            ).scalars()
        )
    assert actors == {"admin:bootstrap", f"cli:{getpass.getuser()}"}, actors


def _shop(env: dict[str, str], *args: str) -> str:
    """Run the `shop` command as an operator would, against the running system."""
    done = subprocess.run(
        [str(BIN / "shop"), *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
