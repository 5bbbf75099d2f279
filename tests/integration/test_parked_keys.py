"""One order a subscription cannot handle is parked for that subscription while every
other order flows: through a read model whose handler raises for that order, through the
saga, and at an event no class can decode. An operator retries the parked order after
the fix, or skips it with a reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from config.bootstrap import Application
from config.queues import EVERY_SUBSCRIPTION
from kernel.handlers import EventHandlers
from kernel.horizon import declare_writer
from kernel.partitions import slot_of
from kernel.subscriptions import Subscriber
from orders.events import OrderPlaced
from projections import order_list
from projections.projection import PostgresProjection
from sagas.order_fulfillment import NAME as SAGA
from tests.support.payments import settle_payments
from tests.support.read_models import ALL_MODELS, contents, rebuilt_from_zero
from tests.support.shop import PlacedOrder, Shop
from tests.support.state import row_count

OTHERS = 100
SKU = "MUG-1"


@pytest.fixture
def shop(application: Application) -> Shop:
    shop = Shop(application.bus, application.provider_calls)
    shop.add_product(SKU, stock=10 * OTHERS)
    return shop


def work(application: Application, passes: int) -> None:
    """What the workers do, in this process: every subscription drained and every
    provider call made, `passes` times at least and until a pass appends no event."""
    done = 0
    while True:
        before = row_count(application.engine, "events")
        for subscriber in application.subscribers(EVERY_SUBSCRIPTION):
            application.runner.run(subscriber)
        settle_payments(application)
        done += 1
        if done >= passes and row_count(application.engine, "events") == before:
            return


def raising_for(
    monkeypatch: pytest.MonkeyPatch, handlers: EventHandlers[..., Any], type_name: str, key: str
) -> None:
    """Make the handler of `type_name` raise for the events about order `key`."""
    real = handlers.of(type_name)
    assert real is not None

    def failing(event: Any, *args: Any) -> Any:
        if getattr(event, "order_id", None) == key:
            raise RuntimeError(f"cannot handle {type_name} of {key}")
        return real(event, *args)

    monkeypatch.setitem(handlers._by_type, type_name, failing)


def parked(client: FlaskClient, headers: dict[str, str], **query: str) -> dict[str, Any]:
    reply = client.get("/admin/api/parked", headers=headers, query_string=query)
    assert reply.status_code == 200, reply.get_json()
    return dict(reply.get_json())


def statuses(application: Application, orders: list[PlacedOrder]) -> dict[str, dict[str, str]]:
    """Each order's status in the order detail and list, and its saga's step ("-": it never
    reached them)."""
    detail = {
        row["order_id"]: row["document"]["status"]
        for row in contents(application, "order_detail", 1)["order_details"]
    }
    with application.engine.connect() as conn:
        steps = conn.execute(text("SELECT order_id, step FROM order_fulfillment_sagas"))
        sagas = {order_id: step for order_id, step in steps}
    listed = order_list.OrderList(application.redis).subscriber(1)
    found: dict[str, dict[str, str]] = {}
    for order in orders:
        raw = application.redis.hget(listed.keys.order(order.order_id), "status")
        found[order.order_id] = {
            "order_detail": detail.get(order.order_id, "-"),
            "order_list": raw.decode() if isinstance(raw, bytes) else raw or "-",
            "saga": sagas.get(order.order_id, "-"),
        }
    return found


def handled_events(application: Application, subscriber: Subscriber, key: str) -> int:
    types = sorted(subscriber.event_types or ())
    with application.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM events WHERE partition_key = :key AND type = ANY(:t)"),
                {"key": key, "t": types},
            ).scalar_one()
        )


def test_a_read_model_parks_the_order_it_cannot_handle_and_applies_it_on_a_retry_after_the_fix(
    application: Application,
    shop: Shop,
    client: FlaskClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ada = shop.customer("ada@example.com")
    poison = shop.place(ada, {SKU: 1})
    projection = application.read_side.projection("order_detail")
    assert isinstance(projection, PostgresProjection)
    raising_for(monkeypatch, projection.handlers, "OrderPlaced", poison.order_id)
    others = [shop.place(ada, {SKU: 1}) for _ in range(OTHERS)]

    work(application, passes=application.runner.park_after + 1)

    found = statuses(application, [poison, *others])
    assert {o.order_id: found[o.order_id] for o in others} == {
        o.order_id: {
            "order_detail": "confirmed",
            "order_list": "confirmed",
            "saga": "awaiting_shipment",
        }
        for o in others
    }
    assert found[poison.order_id] == {
        "order_detail": "-", "order_list": "confirmed", "saga": "awaiting_shipment"
    }  # fmt: skip
    listing = parked(client, admin_headers)
    subscriber = projection.subscriber(1)
    assert listing["counts"] == {"order_detail@1": 1}
    (item,) = listing["items"]
    assert item | {"parked_at": None} == {
        "subscription": "order_detail@1",
        "key": poison.order_id,
        "partition": item["partition"],
        "failed_position": item["failed_position"],
        "event_type": "OrderPlaced",
        "error": f"RuntimeError: cannot handle OrderPlaced of {poison.order_id}",
        "attempts": application.runner.park_after,
        "parked_at": None,
        "retried_at": None,
        "events": handled_events(application, subscriber, poison.order_id),
    }
    (status,) = application.runner.status([subscriber])
    assert (status.state, status.lag_events, status.last_error, status.parked_keys) == (
        "caught_up", 0, None, 1
    )  # fmt: skip

    url = f"/admin/api/parked/order_detail@1/{poison.order_id}"
    still = client.post(url + "/retry", headers=admin_headers, json={"reason": "too early"})
    assert still.status_code == 409, still.get_json()
    assert still.get_json()["type"] == "/problems/still-failing"
    assert parked(client, admin_headers)["items"][0]["attempts"] == 4

    monkeypatch.undo()
    shop.ship(poison, "TRACK-99")  # a later event of the parked order: parked too
    work(application, passes=1)
    waiting = handled_events(application, subscriber, poison.order_id)
    assert waiting > item["events"]
    assert parked(client, admin_headers)["items"][0]["events"] == waiting
    retried = client.post(url + "/retry", headers=admin_headers, json={"reason": "fix deployed"})

    assert retried.status_code == 200, retried.get_json()
    assert retried.get_json()["applied"] == waiting
    assert parked(client, admin_headers) == {"items": [], "counts": {}}
    assert statuses(application, [poison])[poison.order_id]["order_detail"] == "shipped"
    assert contents(application, "order_detail", 1) == rebuilt_from_zero(
        application, "order_detail"
    )
    with application.engine.connect() as conn:
        history = conn.execute(
            text("SELECT action, actor, reason FROM parking_actions ORDER BY id")
        ).all()
    assert [tuple(row) for row in history] == [
        ("parked", "system", f"RuntimeError: cannot handle OrderPlaced of {poison.order_id}"),
        (
            "retry_failed",
            "admin:bootstrap",
            f"RuntimeError: cannot handle OrderPlaced of {poison.order_id}",
        ),
        ("retried", "admin:bootstrap", "fix deployed"),
    ]
    assert client.get(url, headers=admin_headers).status_code == 404


def test_the_saga_parks_an_order_it_cannot_start_while_the_others_are_fulfilled(
    application: Application,
    shop: Shop,
    client: FlaskClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ada = shop.customer("ada@example.com")
    poison = shop.place(ada, {SKU: 1})
    decide = application.saga.decide
    real_start = decide.start

    def start(event: OrderPlaced) -> Any:
        if event.order_id == poison.order_id:
            raise RuntimeError("cannot start")
        return real_start(event)

    monkeypatch.setattr(decide, "start", start)
    others = [shop.place(ada, {SKU: 1}) for _ in range(OTHERS)]

    work(application, passes=application.runner.park_after + 1)

    found = statuses(application, [poison, *others])
    assert all(
        found[o.order_id]
        == {"order_detail": "confirmed", "order_list": "confirmed", "saga": "awaiting_shipment"}
        for o in others
    ), [found[o.order_id] for o in others]
    assert found[poison.order_id] == {
        "order_detail": "pending",
        "order_list": "pending",
        "saga": "-",
    }
    (item,) = parked(client, admin_headers, subscription=SAGA)["items"]
    assert (item["key"], item["event_type"], item["error"]) == (
        poison.order_id, "OrderPlaced", "RuntimeError: cannot start"
    )  # fmt: skip
    sagas_page = client.get("/admin/api/sagas", headers=admin_headers).get_json()
    assert sagas_page["subscription"]["parked_keys"] == 1

    monkeypatch.undo()
    retried = client.post(
        f"/admin/api/parked/{SAGA}/{poison.order_id}/retry", headers=admin_headers, json={}
    )
    assert retried.status_code == 200, retried.get_json()
    work(application, passes=1)

    assert statuses(application, [poison])[poison.order_id] == {
        "order_detail": "confirmed", "order_list": "confirmed", "saga": "awaiting_shipment"
    }  # fmt: skip
    for name in ALL_MODELS:
        assert contents(application, name, 1) == rebuilt_from_zero(application, name), name


def test_an_undecodable_event_parks_its_order_everywhere_and_a_skip_lets_its_later_events_flow(
    application: Application,
    shop: Shop,
    client: FlaskClient,
    admin_headers: dict[str, str],
) -> None:
    ada = shop.customer("ada@example.com")
    before = [shop.place(ada, {SKU: 1}) for _ in range(OTHERS // 2)]
    poison = shop.place(ada, {SKU: 1})
    work(application, passes=1)
    _append_undecodable(application, poison.order_id)
    after = [shop.place(ada, {SKU: 1}) for _ in range(OTHERS // 2)]

    work(application, passes=application.runner.park_after + 1)

    found = statuses(application, [*before, poison, *after])
    assert {found[o.order_id]["order_detail"] for o in before + after} == {"confirmed"}
    assert {found[o.order_id]["order_list"] for o in before + after} == {"confirmed"}
    assert {found[o.order_id]["saga"] for o in before + after} == {"awaiting_shipment"}
    listing = parked(client, admin_headers)
    handling = {
        s.name for s in application.subscribers(EVERY_SUBSCRIPTION)
        if s.event_types is None or "OrderShipped" in s.event_types
    }  # fmt: skip
    assert {item["subscription"] for item in listing["items"]} == handling
    for item in listing["items"]:
        assert (item["key"], item["event_type"], item["events"]) == (
            poison.order_id, "OrderShipped", 1
        )  # fmt: skip
        assert item["error"].startswith("OrderShipped: ")

    missing = client.post(
        f"/admin/api/parked/order_detail@1/{poison.order_id}/skip", headers=admin_headers, json={}
    )
    assert missing.status_code == 422
    assert "reason" in missing.get_json()["errors"]
    for name in sorted(handling):
        skipped = client.post(
            f"/admin/api/parked/{name}/{poison.order_id}/skip",
            headers=admin_headers,
            json={"reason": "written by a broken import; the order never shipped"},
        )
        assert skipped.status_code == 200, skipped.get_json()
        assert skipped.get_json()["skipped"] == 1
    assert parked(client, admin_headers) == {"items": [], "counts": {}}

    shop.ship(poison, "TRACK-7")  # its later events flow again
    work(application, passes=1)
    assert statuses(application, [poison])[poison.order_id] == {
        "order_detail": "shipped", "order_list": "shipped", "saga": "shipped"
    }  # fmt: skip
    detail = client.get(
        f"/admin/api/parked/order_detail@1/{poison.order_id}", headers=admin_headers
    )
    assert detail.status_code == 404
    with application.engine.connect() as conn:
        reasons = set(
            conn.execute(
                text("SELECT actor || ': ' || reason FROM parking_actions WHERE action = 'skipped'")
            ).scalars()
        )
    assert reasons == {"admin:bootstrap: written by a broken import; the order never shipped"}


def test_retry_and_skip_answer_404_for_what_is_not_parked_and_need_the_admin_token(
    client: FlaskClient, admin_headers: dict[str, str], register_customer: Callable[..., Any]
) -> None:
    customer = register_customer("eve@example.com")
    for method, path in (
        ("GET", "/admin/api/parked"),
        ("POST", "/admin/api/parked/order_detail@1/x/retry"),
    ):
        assert client.open(path, method=method, json={}).status_code == 401
        assert (
            client.open(path, method=method, json={}, headers=customer.headers).status_code == 403
        )
    for name in ("order_detail@1", SAGA, "nothing@1"):
        reply = client.post(f"/admin/api/parked/{name}/x/retry", headers=admin_headers, json={})
        assert reply.status_code == 404, reply.get_json()
        assert reply.content_type == "application/problem+json"


def _append_undecodable(application: Application, order_id: str) -> None:
    """An OrderShipped about the order that no event class takes (its fields were renamed
    by a broken import), in a stream of its own so the order itself still loads."""
    metadata = {
        "message_id": "00000000-0000-4000-8000-000000000001",
        "correlation_id": order_id,
        "causation_id": None,
        "actor": "import",
        "occurred_at": "2026-12-06T12:00:00+00:00",
    }
    with application.engine.begin() as conn:
        declare_writer(conn)
        conn.execute(
            text(
                """
                INSERT INTO events (stream_id, stream_type, version, type, schema_version,
                                    data, metadata, partition_key, slot)
                VALUES (:stream, 'order', 1, 'OrderShipped', 1, CAST(:data AS jsonb),
                        CAST(:metadata AS jsonb), :key, :slot)
                """
            ),
            {
                "stream": f"import-{order_id}",
                "data": json.dumps({"order_id": order_id, "tracking": "T-1"}),
                "metadata": json.dumps(metadata),
                "key": order_id,
                "slot": slot_of(order_id),
            },
        )


def test_a_redis_read_model_parks_an_order_and_a_retry_writes_it_in_order(
    application: Application,
    shop: Shop,
    client: FlaskClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ada = shop.customer("ada@example.com")
    poison = shop.place(ada, {SKU: 1})
    with monkeypatch.context() as patched:
        raising_for(patched, order_list.handlers, "OrderPlaced", poison.order_id)
        others = [shop.place(ada, {SKU: 1}) for _ in range(10)]
        work(application, passes=application.runner.park_after + 1)
        found = statuses(application, [poison, *others])
        assert {found[o.order_id]["order_list"] for o in others} == {"confirmed"}
        assert found[poison.order_id]["order_list"] == "-"
        (item,) = parked(client, admin_headers, subscription="order_list@1")["items"]
        assert (item["key"], item["event_type"]) == (poison.order_id, "OrderPlaced")

    retried = client.post(
        f"/admin/api/parked/order_list@1/{poison.order_id}/retry", headers=admin_headers, json={}
    )

    assert retried.status_code == 200, retried.get_json()
    assert statuses(application, [poison])[poison.order_id]["order_list"] == "confirmed"
    assert contents(application, "order_list", 1) == rebuilt_from_zero(application, "order_list")
