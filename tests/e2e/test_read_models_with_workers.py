"""The read side with real `rq worker` processes: read-your-writes, exactly-once in order
with two workers racing, a rebuild asked for over the API, and the Redis read model
healing itself after a flush.

The workers (two, the saga they run, and a payments worker charging at the session's
local Stripe) start once for the module; every test starts from an empty log and an
empty Redis (the e2e conftest resets both).
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from config.bootstrap import Application, bootstrap
from config.flask_app import create_app
from config.settings import Settings
from kernel.event_store import RecordedEvent
from orders.commands import CancelOrder, ShipOrder
from orders.events import CancelledBy
from projections import order_detail
from tests.support.api_client import Customer
from tests.support.event_log import whole_log
from tests.support.payments import (
    AUTHENTICATION_REQUIRED,
    DECLINED,
    SUCCEEDS,
    provider_calls_due,
)
from tests.support.polling import eventually
from tests.support.processes import Process, Processes, environment, wait_for_workers
from tests.support.read_models import ALL_MODELS, contents, lagging, rebuilt_from_zero
from tests.support.shop import ADDRESS_DATA, BIG_CATALOG, CATALOG, PASSWORD, Shop

STATUS_BY_EVENT = {
    "OrderPlaced": "pending",
    "OrderConfirmed": "confirmed",
    "OrderCancelled": "cancelled",
    "OrderShipped": "shipped",
}


@pytest.fixture(scope="module")
def workers(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Process]]:
    env = environment(settings, SWEEP_INTERVAL="1", PAYMENT_TIMEOUT="2")
    with Processes(tmp_path_factory.mktemp("workers")) as processes:
        started = [processes.worker(env) for _ in range(2)] + processes.payments_workers
        wait_for_workers(settings.require()[1], started)
        yield started


def _alive(workers: list[Process]) -> None:
    assert all(worker.alive for worker in workers), "a worker died"


def _settled(application: Application, *, decided: bool = False, timeout: float = 60) -> None:
    """Wait until no charge or refund waits for the payments workers and the saga and
    every read model have applied the whole log (and, with `decided`, every order is
    confirmed or cancelled: no payment deadline is pending)."""

    def check() -> None:
        if decided:
            assert "pending" not in _final_statuses(whole_log(application)).values()
        calls = provider_calls_due(application.engine)
        assert not calls, calls
        behind = lagging(application)
        assert not behind, behind

    eventually(check, timeout=timeout, interval=0.1)


@pytest.fixture(autouse=True)
def settled_afterwards(application: Application) -> Iterator[None]:
    """Let the workers (and the saga) finish a test's work before the next test resets the
    state: work still in flight would otherwise land in the next test's log."""
    yield
    _settled(application, decided=True)


ORDER_BODY = {
    "lines": [{"sku": "MUG-1", "quantity": 2}, {"sku": "TEE-1", "quantity": 1}],
    "shipping_address": ADDRESS_DATA,
    "payment": {"token": SUCCEEDS},
}


@pytest.fixture
def patient_client(settings: Settings) -> Iterator[FlaskClient]:
    """An API whose queries wait up to 10 s for a token: room for a busy 2-core machine."""
    application = bootstrap(dataclasses.replace(settings, read_wait_timeout=10))
    app = create_app(application)
    app.testing = True
    yield app.test_client()
    application.close()


def test_a_query_given_the_commands_token_answers_with_the_order_at_once(
    workers: list[Process],
    application: Application,
    patient_client: FlaskClient,
) -> None:
    client = patient_client
    Shop(application.bus).add_products(CATALOG)
    response = client.post(
        "/api/customers", json={"email": "ada@example.com", "name": "Ada", "password": PASSWORD}
    )
    assert response.status_code == 201
    ada = Customer(
        response.get_json()["customer_id"],
        {"Authorization": f"Bearer {response.get_json()['token']}"},
    )
    response = client.post("/api/orders", json=ORDER_BODY, headers=ada.headers)
    assert response.status_code == 202
    placed = response.get_json()
    token = placed["consistency_token"]

    response = client.get(
        f"/api/orders/{placed['order_id']}?consistency_token={token}", headers=ada.headers
    )

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["read_model"]["stale"] is False
    assert "X-Read-Model-Stale" not in response.headers
    assert int(response.headers["X-Read-Model-Lag"]) >= 0
    document = body["order"]
    assert (document["order_id"], document["customer_id"]) == (placed["order_id"], ada.customer_id)
    assert document["total"] == {"amount": 4998, "currency": "EUR"}
    assert document["item_count"] == 3
    assert document["timeline"][0]["what"] == "placed"

    response = client.get(f"/api/orders?consistency_token={token}", headers=ada.headers)

    assert response.status_code == 200
    body = response.get_json()
    assert body["read_model"]["stale"] is False
    assert [item["order_id"] for item in body["items"]] == [placed["order_id"]]
    assert body["items"][0]["total"] == {"amount": 4998, "currency": "EUR"}
    assert int(response.headers["X-Read-Model-Lag"]) >= 0
    assert "X-Read-Model-Lag-Seconds" in response.headers
    _alive(workers)


def _final_statuses(log: list[RecordedEvent]) -> dict[str, str]:
    statuses = {}
    for recorded in log:
        if recorded.type in STATUS_BY_EVENT:
            statuses[recorded.data["order_id"]] = STATUS_BY_EVENT[recorded.type]
    return statuses


def test_two_workers_apply_every_event_once_per_read_model_in_log_order(
    workers: list[Process], application: Application
) -> None:
    rng = random.Random(4242)
    shop = Shop(application.bus)
    shop.add_products(BIG_CATALOG)
    customers = [shop.customer(f"c{n}@example.com") for n in range(5)]
    placed = []
    for n in range(60):
        token = rng.choice([SUCCEEDS] * 6 + [DECLINED, AUTHENTICATION_REQUIRED])
        lines = (
            {"RARE-1": 6} if n % 10 == 9 else {rng.choice(["MUG-1", "CAP-1"]): rng.randint(1, 3)}
        )
        order = shop.place(rng.choice(customers), lines, token)
        placed.append(order)
        if rng.random() < 0.1:
            shop.cancel(order, "changed my mind", by=CancelledBy.CUSTOMER)
    _settled(application, decided=True)
    confirmed = [o for o, s in _final_statuses(whole_log(application)).items() if s == "confirmed"]
    assert len(confirmed) > 10
    for order_id in confirmed[::3]:
        shop.do(ShipOrder(order_id, f"TRACK-{order_id[:8]}"))
    for order_id in confirmed[1::3]:
        shop.do(CancelOrder(order_id, "out of patience", CancelledBy.SYSTEM))
    _settled(application)

    log = whole_log(application)
    final = _final_statuses(log)
    assert len(final) == len(placed) == 60
    assert set(Counter(final.values())) == {"confirmed", "cancelled", "shipped"}
    about: dict[str, list[str]] = {order_id: [] for order_id in final}
    seq = {}
    for recorded in log:
        if order_detail.handlers.handles(recorded.type):
            about[recorded.data["order_id"]].append(recorded.type)
        if recorded.type == "OrderPlaced":
            seq[recorded.data["order_id"]] = float(recorded.position)

    details = contents(application, "order_detail", 1)["order_details"]
    assert len(details) == 60
    for row in details:
        timeline = [moment["event"] for moment in row["document"]["timeline"]]
        assert timeline == about[row["order_id"]], row["order_id"]
        assert row["status"] == row["document"]["status"] == final[row["order_id"]]

    listed = contents(application, "order_list", 1)
    assert listed["all"] == sorted(seq.items(), key=lambda item: item[1])
    assert sum(key.startswith("order:") for key in listed) == 60
    for status in ("confirmed", "cancelled", "shipped"):
        members = [member for member, _ in listed.get(f"status:{status}", [])]
        assert sorted(members) == sorted(o for o, s in final.items() if s == status)
    assert "status:pending" not in listed
    for order_id, status in final.items():
        assert listed[f"order:{order_id}"]["status"] == status

    sales = contents(application, "sales_analytics", 1)
    counts = Counter(recorded.type for recorded in log)
    assert len(sales["sales_orders"]) == 60
    assert sum(day["orders"] for day in sales["sales_daily"]) == counts["OrderConfirmed"]
    assert sum(day["cancellations"] for day in sales["sales_daily"]) == counts["OrderCancelled"]
    assert sum(day["refunds"] for day in sales["sales_daily"]) == counts["PaymentRefunded"]

    for name in ALL_MODELS:
        assert contents(application, name, 1) == rebuilt_from_zero(application, name), name
    _alive(workers)


def test_a_rebuild_asked_for_over_the_api_is_carried_out_by_the_workers(
    workers: list[Process],
    application: Application,
    client: FlaskClient,
    admin_headers: dict[str, str],
) -> None:
    shop = Shop(application.bus)
    shop.add_products(CATALOG)
    ada = shop.customer("ada@example.com")
    for quantity in range(1, 6):
        shop.place(ada, {"TEE-1": quantity})
    _settled(application, decided=True)
    kept = {name: contents(application, name, 1) for name in ALL_MODELS}
    listed = _listed(client, admin_headers)

    for name in ALL_MODELS:
        response = client.post(f"/admin/api/projections/{name}/rebuild", headers=admin_headers)
        assert response.status_code == 202

    def switched() -> None:
        for name in ALL_MODELS:
            generations = application.read_side.generations(name)
            assert (generations.active, generations.building) == (2, None), name

    eventually(switched, timeout=30, interval=0.05)
    for name in ALL_MODELS:
        assert contents(application, name, 2) == kept[name], name
    assert _listed(client, admin_headers) == listed
    _alive(workers)


def _listed(client: FlaskClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get("/admin/api/orders?limit=100", headers=headers)
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


def test_the_order_list_rebuilds_itself_after_redis_is_flushed(
    workers: list[Process],
    application: Application,
    client: FlaskClient,
    admin_headers: dict[str, str],
) -> None:
    shop = Shop(application.bus)
    shop.add_products(CATALOG)
    ada = shop.customer("ada@example.com")
    for quantity in range(1, 13):
        shop.place(ada, {"MUG-1": quantity})
    _settled(application)
    before = contents(application, "order_list", 1)
    listed = _listed(client, admin_headers)
    assert len(listed) == 12

    application.redis.flushdb()  # no command follows: the periodic sweep must notice

    def complete() -> None:
        assert _listed(client, admin_headers) == listed
        assert contents(application, "order_list", 1) == before

    eventually(complete, timeout=30, interval=0.05)

    late = shop.place(ada, {"TEE-1": 1})

    def has_the_next_order() -> None:
        assert [item["order_id"] for item in _listed(client, admin_headers)] == [
            late.order_id,
            *(item["order_id"] for item in listed),
        ]

    eventually(has_the_next_order, timeout=30, interval=0.05)
    _alive(workers)
