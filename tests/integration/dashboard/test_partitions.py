"""Every status surface (the admin API, the dashboard, `shop projections status`, `/metrics`
and `/readyz`) shows each subscription's partitions with their lease holders, the
partitions no worker drains, and the writers holding every subscription back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import text

from config import cli
from config.bootstrap import Application
from kernel.horizon import declare_writer
from kernel.leases import Lease, Leases
from kernel.partitions import partition_of, slot_of
from kernel.subscriptions import Subscriber
from tests.integration.dashboard.support import place, settle
from tests.integration.dashboard.test_metrics import scrape, value
from tests.support.api_client import Customer

HOLDER = "shop-test:4242"


def order_list(application: Application) -> Subscriber:
    return application.read_side.projection("order_list").subscriber(1)


def partition_of_order(application: Application, order_id: str) -> int:
    """The partition that applies the events about the order."""
    return partition_of(slot_of(order_id), application.settings.subscription_partitions)


def hold(application: Application, subscriber: Subscriber, partition: int) -> Lease:
    """Take the partition's lease for a minute, as a worker named HOLDER would."""
    with application.engine.connect() as conn:
        application.runner.partitions(conn, subscriber)  # recorded on first use
    with application.engine.begin() as conn:
        lease = Leases(HOLDER, 60).take(conn, subscriber.name, partition)
    assert isinstance(lease, Lease)
    return lease


def strand(application: Application, *subscribers: Subscriber) -> None:
    """Leave the subscribers' partitions without a holder since a minute ago (a worker that
    died with its lease)."""
    with application.engine.connect() as conn:
        for subscriber in subscribers:
            application.runner.partitions(conn, subscriber)
    with application.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE subscription_partitions SET holder = NULL,"
                " expires_at = now() - interval '1 minute' WHERE name = ANY(:names)"
            ),
            {"names": [subscriber.name for subscriber in subscribers]},
        )


@contextmanager
def long_writer(application: Application) -> Iterator[int]:
    """An event-store writer transaction left open (nothing written); yields its pid."""
    with application.engine.connect() as conn, conn.begin():
        # Longer than the engine lets a transaction idle.
        conn.execute(text("SET LOCAL idle_in_transaction_session_timeout = '60s'"))
        declare_writer(conn)
        conn.execute(text("SELECT pg_current_xact_id()"))  # it has a transaction id now
        yield int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def api_status(client: FlaskClient, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get("/admin/api/projections", headers=headers)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def projection(body: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [p for p in body["projections"] if p["name"] == name]
    return dict(found)


def partitions_html(html: str, name: str) -> str:
    """The partitions table the page shows for subscription (or read model) `name`."""
    return html.split(f'data-partitions-of="{name}"')[1].split("</table>")[0]


def partition_html(html: str, name: str, partition: int) -> str:
    return partitions_html(html, name).split(f'data-partition="{partition}"')[1].split("</tr>")[0]


def cli_status(application: Application, monkeypatch: pytest.MonkeyPatch) -> str:
    """What `shop projections status` prints, run on the test's application."""

    @contextmanager
    def this_application(command: str) -> Iterator[Application]:
        yield application

    monkeypatch.setattr(cli, "_application", this_application)
    result = CliRunner().invoke(cli.main, ["projections", "status"])
    assert result.exit_code == 0, result.output
    return result.output


def test_each_surface_shows_every_partition_and_who_holds_its_lease_until_when(
    admin: FlaskClient,
    application: Application,
    catalog: None,
    ada: Customer,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order = place(admin, ada, {"MUG-1": 1})
    busy = partition_of_order(application, order.order_id)
    count = application.settings.subscription_partitions
    taken = datetime.now(UTC)
    hold(application, order_list(application), busy)
    hold(application, application.saga, busy)

    body = api_status(admin, admin_headers)
    listed = projection(body, "order_list")
    parts = listed["partitions"]
    assert [part["partition"] for part in parts] == list(range(count))
    assert sum(part["lag_events"] for part in parts) == listed["lag_events"]
    held = parts[busy]
    assert (held["holder"], held["unheld_seconds"], held["state"]) == (HOLDER, None, "running")
    assert held["lag_events"] >= 1  # the order placed
    expires = datetime.fromisoformat(held["lease_expires_at"])
    assert 0 < (expires - taken).total_seconds() <= 61
    for part in parts:
        assert set(part) == {
            "partition", "checkpoint", "lag_events", "lag_seconds", "state", "holder",
            "lease_expires_at", "unheld_seconds", "failed_position", "last_error",
        }  # fmt: skip
        if part["partition"] != busy:
            assert (part["holder"], part["lease_expires_at"]) == (None, None)
            assert part["unheld_seconds"] >= 0
    assert body["held_back_by"] == []

    page = admin.get("/admin/projections").get_data(as_text=True)
    row = partition_html(page, "order_list", busy)
    assert f'data-holder="{HOLDER}"' in row
    assert f'data-lease-expires="{held["lease_expires_at"]}"' in row
    assert partitions_html(page, "order_list").count("data-partition=") == count
    sagas = admin.get("/admin/sagas").get_data(as_text=True)
    assert f'data-holder="{HOLDER}"' in partition_html(sagas, "order_fulfillment", busy)
    assert "data-held-back" not in page + sagas

    printed = cli_status(application, monkeypatch)
    lines = printed.splitlines()
    assert lines[0].split()[0] == "subscription"
    first = next(i for i, line in enumerate(lines) if line.startswith("order_list "))
    assert lines[first + 1 + busy].split()[:2] == ["partition", str(busy)]
    assert f"held by {HOLDER}, lease ends in" in lines[first + 1 + busy]
    assert any(line.startswith("order_fulfillment ") for line in lines)
    assert "held back by" not in printed

    samples = scrape(admin)
    labels = {"subscription": "order_list@1", "partition": str(busy)}
    assert value(samples, "shop_subscription_partition_held", **labels) == 1
    assert 0 < value(samples, "shop_subscription_partition_lease_seconds_remaining", **labels) <= 60
    assert value(samples, "shop_subscription_partition_lag_events", **labels) >= 1
    assert value(
        samples, "shop_subscription_partition_held", subscription="order_fulfillment",
        partition=str(busy),
    ) == 1  # fmt: skip
    other = {"subscription": "order_list@1", "partition": str((busy + 1) % count)}
    assert value(samples, "shop_subscription_partition_held", **other) == 0
    assert value(samples, "shop_subscription_partition_lease_seconds_remaining", **other) == 0


def test_readyz_is_degraded_while_a_partition_with_work_has_no_holder_for_longer_than_a_lease(
    admin: FlaskClient,
    application: Application,
    catalog: None,
    ada: Customer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order = place(admin, ada, {"MUG-1": 1})
    busy = partition_of_order(application, order.order_id)
    strand(application, order_list(application), application.saga)

    response = admin.get("/readyz")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded"
    checks = body["checks"]
    assert (checks["postgres"], checks["redis"], checks["migrations"]) == ("ok", "ok", "ok")
    assert checks["subscriptions"].startswith("stranded: ")
    assert f"order_list@1 partition {busy} (no holder for 6" in checks["subscriptions"]
    assert f"order_fulfillment partition {busy} (no holder for 6" in checks["subscriptions"]
    row = partition_html(admin.get("/admin/projections").get_data(as_text=True), "order_list", busy)
    assert "data-stranded" in row and "is a worker running?" in row
    assert "STRANDED: no holder for 6" in cli_status(application, monkeypatch)

    settle(application)  # workers took the partitions, drained them and let go

    assert admin.get("/readyz").get_json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "redis": "ok", "migrations": "ok", "subscriptions": "ok"},
    }


def test_a_writer_running_for_more_than_5_s_is_named_as_holding_every_subscription_back(
    admin: FlaskClient,
    application: Application,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with long_writer(application) as pid:
        assert api_status(admin, admin_headers)["held_back_by"] == []  # not for 5 s yet
        time.sleep(5.2)

        (writer,) = api_status(admin, admin_headers)["held_back_by"]
        projections = admin.get("/admin/projections").get_data(as_text=True)
        sagas = admin.get("/admin/sagas").get_data(as_text=True)
        printed = cli_status(application, monkeypatch)
        oldest = value(scrape(admin), "shop_event_store_oldest_writer_seconds")

    assert writer["pid"] == pid
    assert writer["age_seconds"] >= 5.2
    assert isinstance(writer["transaction_id"], int)
    assert writer["state"] == "idle in transaction"
    assert "pg_backend_pid()" in writer["query"]
    assert set(writer) == {
        "pid", "transaction_id", "age_seconds", "state", "query", "application", "client",
    }  # fmt: skip
    for page in (projections, sagas):
        warning = page.split("data-held-back")[1].split("</div>")[0]
        assert f'data-writer="{pid}"' in warning
        assert "pg_backend_pid()" in warning
    assert "held back by 1 event-store writer(s)" in printed
    assert f"pid {pid}  xid {writer['transaction_id']}" in printed
    assert oldest >= 5.2

    assert api_status(admin, admin_headers)["held_back_by"] == []
    assert value(scrape(admin), "shop_event_store_oldest_writer_seconds") == 0
    assert "data-held-back" not in admin.get("/admin/projections").get_data(as_text=True)


def test_the_openapi_document_describes_partitions_and_held_back_writers(
    client: FlaskClient,
) -> None:
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]

    subscription = schemas["SubscriptionStatus"]
    assert "partitions" in subscription["required"]
    partition = schemas["PartitionStatus"]["properties"]
    assert partition["holder"]["nullable"] is True
    assert partition["lease_expires_at"] == {
        "type": "string",
        "format": "date-time",
        "nullable": True,
        "description": "When the holder's lease runs out unless renewed",
    }
    assert partition["unheld_seconds"]["nullable"] is True
    assert "held_back_by" in schemas["Projections"]["required"]
    assert set(schemas["RunningWriter"]["properties"]) == {
        "pid", "transaction_id", "age_seconds", "state", "query", "application", "client",
    }  # fmt: skip


def test_the_saga_admin_api_shows_its_subscription_with_each_partition(
    client: FlaskClient,
    application: Application,
    catalog: None,
    ada: Customer,
    admin_headers: dict[str, str],
) -> None:
    order = place(client, ada, {"MUG-1": 1})
    busy = partition_of_order(application, order.order_id)
    hold(application, application.saga, busy)

    response = client.get("/admin/api/sagas", headers=admin_headers)

    assert response.status_code == 200
    subscription = response.get_json()["subscription"]
    assert subscription["subscription"] == "order_fulfillment"
    assert subscription["lag_events"] >= 1
    parts = subscription["partitions"]
    assert len(parts) == application.settings.subscription_partitions
    assert parts[busy]["holder"] == HOLDER and parts[busy]["lease_expires_at"]
