"""Queries read from a streaming replica (READ_DATABASE_URL), commands write to the primary,
and a consistency token still gives read-your-writes: shown against a real replica whose
replay the tests pause (`pg_wal_replay_pause`), so the replica's data stays behind."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config.bootstrap import Application, bootstrap
from config.flask_app import create_app
from config.settings import Settings
from inventory.commands import AddProduct
from kernel.money import Money
from projections.queries import OrderDetail
from tests.integration.dashboard.support import sign_in
from tests.integration.replicas.conftest import BOUND, DATABASE, pause, resume
from tests.support.polling import eventually
from tests.support.processes import free_port
from tests.support.read_models import drain
from tests.support.replication import Replication, caught_up
from tests.support.shop import CATALOG, PASSWORD, Shop

ADDRESS = {"name": "Ada Lovelace", "line1": "1 Main St", "city": "London",
           "postal_code": "N1", "country": "GB"}  # fmt: skip


@pytest.fixture
def client(replica_app: Flask, replica_application: Application) -> FlaskClient:
    Shop(replica_application.bus).add_products(CATALOG)
    return replica_app.test_client()


def _customer(client: FlaskClient) -> dict[str, str]:
    body = {"email": "ada@example.com", "name": "Ada", "password": PASSWORD}
    response = client.post("/api/customers", json=body)
    assert response.status_code == 201, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


def _place(client: FlaskClient, headers: dict[str, str]) -> dict[str, str]:
    body = {"lines": [{"sku": "MUG-1", "quantity": 2}], "shipping_address": ADDRESS,
            "payment": {"token": "pm_card_visa"}}  # fmt: skip
    response = client.post("/api/orders", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    placed: dict[str, str] = response.get_json()
    return placed


def test_a_token_waits_for_the_replica_to_replay_its_write(
    client: FlaskClient, replica_application: Application, replication: Replication
) -> None:
    headers = _customer(client)
    caught_up(replication)
    pause(replication)

    placed = _place(client, headers)  # a command: on the primary, replay paused or not
    drain(replica_application, ["order_detail"])  # a worker's part: on the primary too
    order_id, token = placed["order_id"], placed["consistency_token"]
    on_primary = OrderDetail(replica_application.engine)(1, order_id)
    assert on_primary is not None

    # Without a token the query reads the replica as it is: no such order there yet.
    assert client.get(f"/api/orders/{order_id}", headers=headers).status_code == 404
    # With it, the query waits (bounded) for the replica, then says it is not visible yet.
    started = time.monotonic()
    waited = client.get(f"/api/orders/{order_id}?consistency_token={token}", headers=headers)
    assert time.monotonic() - started >= BOUND
    assert waited.status_code == 503
    assert waited.content_type == "application/problem+json"
    assert waited.get_json()["type"] == "/problems/not-visible-yet"
    assert waited.headers["Retry-After"]

    resume(replication)
    seen = client.get(f"/api/orders/{order_id}?consistency_token={token}", headers=headers)
    assert seen.status_code == 200, seen.get_json()
    assert seen.get_json()["order"]["order_id"] == order_id
    assert seen.get_json()["read_model"]["stale"] is False


def test_a_synchronous_read_model_waits_for_the_replica_too(
    client: FlaskClient, replica_application: Application, replication: Replication
) -> None:
    caught_up(replication)
    pause(replication)
    added = Shop(replica_application.bus).do(
        AddProduct("CAP-1", "Cap", Money(899, "EUR"), 5)
    )  # the catalog is written in the command's transaction, on the primary

    started = time.monotonic()
    stale = client.get(f"/api/products?consistency_token={added.consistency_token}")
    assert time.monotonic() - started >= BOUND
    assert stale.status_code == 200
    assert stale.headers["X-Read-Model-Stale"] == "true"
    assert "CAP-1" not in {item["sku"] for item in stale.get_json()["items"]}

    resume(replication)
    fresh = client.get(f"/api/products?consistency_token={added.consistency_token}")
    assert "X-Read-Model-Stale" not in fresh.headers
    assert "CAP-1" in {item["sku"] for item in fresh.get_json()["items"]}


def test_the_redis_order_list_needs_no_replay(
    client: FlaskClient, replica_application: Application, replication: Replication
) -> None:
    """The order list lives in Redis: a token its checkpoint has passed is answered at once,
    however far behind the replica is."""
    headers = _customer(client)
    caught_up(replication)
    pause(replication)
    placed = _place(client, headers)
    drain(replica_application, ["order_list"])

    started = time.monotonic()
    listed = client.get(
        f"/api/orders?consistency_token={placed['consistency_token']}", headers=headers
    )
    assert time.monotonic() - started < BOUND
    assert listed.status_code == 200
    assert [item["order_id"] for item in listed.get_json()["items"]] == [placed["order_id"]]
    assert listed.get_json()["read_model"]["stale"] is False


def test_commands_go_on_while_replay_is_paused(
    client: FlaskClient, replica_application: Application, replication: Replication
) -> None:
    headers = _customer(client)
    pause(replication)
    for _ in range(3):
        _place(client, headers)
    restock = client.post(
        "/admin/api/products/MUG-1/restock",
        json={"quantity": 5},
        headers={"Authorization": f"Bearer {replica_application.settings.admin_token}"},
    )
    assert restock.status_code == 202, restock.get_json()


def test_the_lag_headers_report_the_replica_delay(
    client: FlaskClient,
    replica_application: Application,
    replication: Replication,
    admin_headers: dict[str, str],
) -> None:
    caught_up(replication)
    time.sleep(0.6)  # past the reuse of the last measurement

    def current() -> None:
        answer = client.get("/api/products")
        assert answer.headers["X-Replica-Lag-Seconds"] == "0.000"
        assert answer.headers["X-Replica-Lag-Bytes"] == "0"

    eventually(current, timeout=5)

    pause(replication)
    Shop(replica_application.bus).add_product("CAP-1", 5)
    time.sleep(0.6)
    behind = client.get("/api/products")
    assert float(behind.headers["X-Replica-Lag-Seconds"]) > 0
    assert int(behind.headers["X-Replica-Lag-Bytes"]) > 0
    assert "X-Read-Model-Lag" in behind.headers  # the read model's own lag, on the replica

    (replica,) = client.get("/admin/api/projections", headers=admin_headers).get_json()["replicas"]
    assert replica["reachable"] is True
    assert replica["replay_paused"] is True
    assert replica["lag_bytes"] > 0
    assert replica["name"].startswith("replica 1 (127.0.0.1:")

    resume(replication)
    caught_up(replication)
    time.sleep(0.6)
    eventually(current, timeout=5)


def test_a_token_not_from_this_log_is_refused_at_once(client: FlaskClient) -> None:
    """Not on the replica might be not replayed yet: the primary says it was never issued."""
    started = time.monotonic()
    refused = client.get("/api/products?consistency_token=999999.1.0")
    assert refused.status_code == 422
    assert time.monotonic() - started < BOUND


@pytest.fixture
def down_and_up(
    replica_settings: Settings, replication: Replication
) -> Iterator[tuple[FlaskClient, FlaskClient]]:
    """A shop whose only replica is down, and one with a replica down and one up."""
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/{DATABASE}"
    alive = replication.url("replica", DATABASE)
    built = [
        bootstrap(dataclasses.replace(replica_settings, read_database_urls=urls))
        for urls in ((nowhere,), (nowhere, alive))
    ]
    apps = [create_app(application) for application in built]
    yield apps[0].test_client(), apps[1].test_client()
    for application in built:
        application.close()


def test_a_replica_down_is_a_clean_503_or_passed_over(
    client: FlaskClient, down_and_up: tuple[FlaskClient, FlaskClient]
) -> None:
    alone, beside_another = down_and_up
    answer = alone.get("/api/products")
    assert answer.status_code == 503
    assert answer.content_type == "application/problem+json"
    assert answer.headers["Retry-After"]

    for _ in range(4):  # every turn, the dead replica's included, is answered by the live one
        found = beside_another.get("/api/products")
        assert found.status_code == 200
        assert {item["sku"] for item in found.get_json()["items"]} >= {"MUG-1"}

    # Still ready (commands need no replica), degraded, naming the replica.
    ready = alone.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["status"] == "degraded"
    assert ready.get_json()["checks"]["replicas"].startswith("unreachable: replica 1 (")
    assert client.get("/readyz").get_json()["checks"]["replicas"] == "ok"


def test_the_dashboard_reads_the_replica_and_waits_for_an_actions_token(
    client: FlaskClient, replica_application: Application, replication: Replication
) -> None:
    headers = _customer(client)
    assert sign_in(client, replica_application.settings.admin_token or "").status_code == 303
    caught_up(replication)
    pause(replication)
    placed = _place(client, headers)
    drain(replica_application, ["order_detail"])
    page = f"/admin/orders/{placed['order_id']}"

    assert client.get(page).status_code == 404  # the replica has neither document nor events
    resume(replication)
    caught_up(replication)
    shown = client.get(f"{page}?consistency_token={placed['consistency_token']}")
    assert shown.status_code == 200
    assert placed["order_id"] in shown.get_data(as_text=True)


def test_a_replica_that_goes_down_fails_queries_cleanly_and_serves_again_once_back(
    client: FlaskClient, replication: Replication
) -> None:
    assert client.get("/api/products").status_code == 200  # the pool holds a connection
    with replication.replica_down():
        time.sleep(1.1)  # idle long enough for the pool to check it before use
        down = client.get("/api/products")
        assert down.status_code == 503
        assert down.content_type == "application/problem+json"
        commands = client.post("/api/customers", json={"email": "bo@example.com",
                               "name": "Bo", "password": PASSWORD})  # fmt: skip
        assert commands.status_code == 201  # on the primary

    def serves() -> None:
        assert client.get("/api/products").status_code == 200

    eventually(serves, timeout=20, interval=0.2)


def test_queries_take_the_replicas_in_turn_bounded_as_the_primary_is(
    replica_settings: Settings, replication: Replication
) -> None:
    by_address = replication.url("replica", DATABASE)
    by_name = by_address.replace("@127.0.0.1:", "@localhost:")  # the same server, twice
    application = bootstrap(
        dataclasses.replace(replica_settings, read_database_urls=(by_address, by_name))
    )
    try:
        side = application.read_side
        assert side.replicas is not None
        served = []
        for _ in range(4):
            with side.query() as conn:
                served.append(side.replicas.of(conn.engine))
                timeout = conn.exec_driver_sql("SHOW statement_timeout").scalar()
                assert conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar() is True
            assert timeout == f"{int(replica_settings.statement_timeout)}s"
        first, second = side.replicas.replicas
        assert served == [first, second, first, second]
        assert (first.name, second.name) == (
            f"replica 1 (127.0.0.1:{by_address.rsplit(':', 1)[1].split('/')[0]})",
            f"replica 2 (localhost:{by_address.rsplit(':', 1)[1].split('/')[0]})",
        )
    finally:
        application.close()
