"""Versioned read models: workers whose code declares a newer version of a read model
rebuild it, once however many race, while queries keep reading the old generation;
they switch once it has caught up; and workers of the previous release, still running
in a rolling deploy, neither rebuild it back nor write into the new generation.

The session's `application` is the release running before the deploy (every read
model at version 1); `release(...)` builds the next one's processes, with the read
models' versions as its code would declare them.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from rq import Queue

from config import cli
from config.bootstrap import Application
from config.flask_app import create_app
from config.jobs import Jobs
from config.queues import PROJECTIONS
from config.settings import Settings
from inventory.commands import RestockProduct
from kernel.event_store import START
from projections import order_detail, sales_analytics
from projections.generations import Build
from tests.integration.projections.mixed_orders import mixed_orders
from tests.support.read_models import contents, drain, is_empty, rebuilt_from_zero
from tests.support.releases import release
from tests.support.shop import Shop

WORKER = f"{socket.gethostname()}:{os.getpid()}"  # what a worker names itself (default_holder)
RACERS = 6
T = TypeVar("T")

# order_detail's version in this code, and the next release's.
OLD = order_detail.VERSION
NEW = OLD + 1
UPGRADE = f"version {OLD} -> {NEW}"
SALES = sales_analytics.VERSION  # sales_analytics's version in this code


def race(applications: list[Application], work: Callable[[Application], T]) -> list[T]:
    """`work(application)` in a thread per application, all let go at once: each with
    its own database sessions, as processes on several hosts would be."""
    gate = threading.Barrier(len(applications))

    def run(application: Application) -> T:
        gate.wait()
        return work(application)

    with ThreadPoolExecutor(len(applications)) as pool:
        return list(pool.map(run, applications))


def rebuild_jobs(application: Application) -> int:
    queue = Queue(PROJECTIONS, connection=application.queues.redis)
    return sum(1 for job in queue.get_jobs() if job.func_name == "config.jobs.rebuild")


def status_of(client: FlaskClient, headers: dict[str, str], name: str) -> dict[str, Any]:
    response = client.get("/admin/api/projections", headers=headers)
    assert response.status_code == 200, response.get_json()
    (found,) = [p for p in response.get_json()["projections"] if p["name"] == name]
    return dict(found)


def detail(client: FlaskClient, headers: dict[str, str], order_id: str) -> Any:
    response = client.get(f"/admin/api/orders/{order_id}", headers=headers)
    assert response.status_code == 200, (order_id, response.get_json())
    return response.get_json()["order"]


def api(application: Application) -> FlaskClient:
    app = create_app(application)
    app.testing = True
    return app.test_client()


def test_workers_of_a_new_version_rebuild_it_once_and_switch_when_it_has_caught_up(
    application: Application,
    settings: Settings,
    shop: Shop,
    client: FlaskClient,
    admin_headers: dict[str, str],
) -> None:
    scenario = mixed_orders(shop, count=40, seed=7, every=13)
    drain(application)
    assert Jobs(application).sweep() == {}  # the running release records its versions
    assert application.read_side.generations("order_detail").built == Build(OLD, None, None)
    some_order = scenario.orders[0].order.order_id
    before = detail(client, admin_headers, some_order)

    with ExitStack() as stack:
        new = [stack.enter_context(release(settings, order_detail=NEW)) for _ in range(RACERS)]
        started = race(new, lambda app: Jobs(app).sweep())

        assert sorted(started, key=len) == [{}] * (RACERS - 1) + [{"order_detail": 2}]
        current = application.read_side.generations("order_detail")
        assert (current.active, current.building) == (1, 2)
        assert current.rebuild == Build(NEW, UPGRADE, WORKER)
        assert rebuild_jobs(application) == 1, "the sweeps queued more than one rebuild job"
        for other in ("catalog", "sales_analytics", "order_list"):
            assert application.read_side.generations(other).building is None

        # Queries still read generation 1: generation 2 holds nothing yet.
        assert is_empty(contents(application, "order_detail", 2))
        assert detail(client, admin_headers, some_order) == before
        status = status_of(api(new[0]), admin_headers, "order_detail")
        assert (status["generation"], status["version"], status["code_version"]) == (1, OLD, NEW)
        assert (status["reason"], status["requested_by"]) == (None, None)
        rebuild = status["rebuild"]
        assert (rebuild["subscription"], rebuild["generation"], rebuild["version"]) == (
            "order_detail@2", 2, NEW
        )  # fmt: skip
        assert (rebuild["reason"], rebuild["requested_by"]) == (UPGRADE, WORKER)
        assert rebuild["lag_events"] > 0 and rebuild["started_at"]
        assert status_of(client, admin_headers, "order_detail")["code_version"] == OLD

        # An order placed meanwhile reaches both generations; the job switches once
        # generation 2 has caught up.
        late = shop.place(scenario.customers[0], {"MUG-1": 1})
        assert Jobs(new[1]).rebuild("order_detail") == "switched to generation 2"

        current = application.read_side.generations("order_detail")
        assert (current.active, current.building) == (2, None)
        assert current.built == Build(NEW, UPGRADE, WORKER)
        assert is_empty(contents(application, "order_detail", 1)), "generation 1 not purged"
        assert contents(application, "order_detail", 2) == rebuilt_from_zero(
            application, "order_detail"
        )
        assert detail(client, admin_headers, late.order_id)["status"] == "pending"
        status = status_of(client, admin_headers, "order_detail")
        assert (status["generation"], status["version"], status["rebuild"]) == (2, NEW, None)
        assert (status["reason"], status["requested_by"]) == (UPGRADE, WORKER)

        # Done: neither the new release nor the old one starts another.
        assert race(new, lambda app: Jobs(app).sweep()) == [{}] * RACERS
        assert Jobs(application).sweep() == {}
        assert application.read_side.generations("order_detail") == current


def test_a_worker_of_the_old_version_leaves_the_new_generation_alone(
    application: Application,
    settings: Settings,
    shop: Shop,
    client: FlaskClient,
    admin_headers: dict[str, str],
) -> None:
    scenario = mixed_orders(shop, count=20, seed=11, every=7)
    drain(application)
    old = Jobs(application)
    old.sweep()
    with release(settings, order_detail=NEW) as next_release:
        new = Jobs(next_release)
        assert new.sweep() == {"order_detail": 2}

        # While generation 2 is built: the old worker feeds generation 1 only, and
        # leaves the rebuild to the new workers.
        assert [s.name for s in application.read_side.subscribers("order_detail")] == [
            "order_detail@1"
        ]
        assert old.rebuild("order_detail") == (
            f"generation 2 is built with version {NEW}: left to workers running it"
        )
        placed = shop.place(scenario.customers[0], {"MUG-1": 2})
        applied = old.catch_up("order_detail")
        assert applied["order_detail@1"] > 0 and "order_detail@2" not in applied
        (building,) = application.runner.status(
            [application.read_side.projection("order_detail").subscriber(2)]
        )
        assert building.checkpoint == START, "the old worker wrote the new generation"
        assert old.sweep() == {}
        # An operator's rebuild through the old API is the one under way.
        response = client.post("/admin/api/projections/order_detail/rebuild", headers=admin_headers)
        assert response.status_code == 202
        assert response.get_json() == {"name": "order_detail", "generation": 2}

        assert new.rebuild("order_detail") == "switched to generation 2"

        # After the switch: the old worker neither rebuilds back to version OLD nor writes
        # the new generation; the new workers keep it current.
        assert old.sweep() == {}
        assert application.read_side.subscribers("order_detail") == []
        later = shop.place(scenario.customers[0], {"MUG-1": 1})
        assert "order_detail@2" not in old.catch_up("order_detail")
        (active,) = application.runner.status(
            [application.read_side.projection("order_detail").subscriber(2)]
        )
        assert active.lag_events > 0
        assert new.catch_up("order_detail")["order_detail@2"] > 0
        for order in (placed, later):
            assert detail(client, admin_headers, order.order_id)["order_id"] == order.order_id

        # Nor may an operator take it back through the old API by mistake.
        response = client.post("/admin/api/projections/order_detail/rebuild", headers=admin_headers)
        assert response.status_code == 409
        assert response.content_type == "application/problem+json"
        problem = response.get_json()
        assert problem["type"] == "/problems/older-code"
        assert f"built with version {NEW}; this code is version {OLD}" in problem["detail"]
        current = application.read_side.generations("order_detail")
        assert (current.active, current.building, current.built) == (
            2, None, Build(NEW, UPGRADE, WORKER)
        )  # fmt: skip


def test_a_synchronous_read_model_of_a_newer_version_is_not_written_by_old_commands(
    application: Application, settings: Settings, shop: Shop
) -> None:
    mixed_orders(shop, count=10, seed=3, every=5)
    Jobs(application).sweep()
    with release(settings, catalog=2) as next_release:
        new = Jobs(next_release)
        assert new.sweep() == {"catalog": 2}
        # Old commands keep the active generation 1 current until the switch.
        shop.do(RestockProduct("MUG-1", 5))
        assert new.rebuild("catalog") == "switched to generation 2"
        stock = _stock(application, "MUG-1", generation=2)

        # A command of the old release commits, but leaves generation 2 to the new
        # workers, whose next sweep applies it.
        shop.do(RestockProduct("MUG-1", 7))
        assert _stock(application, "MUG-1", generation=2) == stock
        new.sweep()
        assert _stock(application, "MUG-1", generation=2) == stock + 7
        # Commands of the new release apply it at once again.
        Shop(next_release.bus).do(RestockProduct("MUG-1", 1))
        assert _stock(application, "MUG-1", generation=2) == stock + 8


def _stock(application: Application, sku: str, generation: int) -> int:
    (row,) = [r for r in contents(application, "catalog", generation)["catalog_products"]
              if r["sku"] == sku]  # fmt: skip
    return int(row["on_hand"])


def test_an_operators_rebuild_records_who_asked_and_older_code_must_insist(
    application: Application,
    settings: Settings,
    shop: Shop,
    client: FlaskClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mixed_orders(shop, count=10, seed=5, every=5)
    drain(application)
    response = client.post("/admin/api/projections/sales_analytics/rebuild", headers=admin_headers)
    assert response.status_code == 202
    status = status_of(client, admin_headers, "sales_analytics")
    rebuild = status["rebuild"]
    assert (rebuild["generation"], rebuild["version"], rebuild["reason"]) == (2, SALES, "operator")
    assert rebuild["requested_by"] == "admin:bootstrap"
    assert Jobs(application).rebuild("sales_analytics") == "switched to generation 2"
    status = status_of(client, admin_headers, "sales_analytics")
    assert (status["version"], status["reason"], status["requested_by"]) == (
        SALES, "operator", "admin:bootstrap"
    )  # fmt: skip

    # The next version is rolled out, then rolled back: the old code's `shop projections
    # rebuild` refuses to go back unless told to.
    with release(settings, sales_analytics=SALES + 1) as next_release:
        assert Jobs(next_release).sweep() == {"sales_analytics": 3}
        assert Jobs(next_release).rebuild("sales_analytics") == "switched to generation 3"

    @contextmanager
    def this_application(command: str) -> Iterator[Application]:
        yield application

    monkeypatch.setattr(cli, "_application", this_application)
    refused = CliRunner().invoke(cli.main, ["projections", "rebuild", "sales_analytics"])
    assert refused.exit_code == 1
    assert (
        f"generation 3 was built with version {SALES + 1}; this code is version {SALES}"
        in refused.output
    )
    assert "--older" in refused.output
    assert application.read_side.generations("sales_analytics").building is None

    done = CliRunner().invoke(cli.main, ["projections", "rebuild", "sales_analytics", "--older"])
    assert done.exit_code == 0, done.output
    assert "switched to generation 4" in done.output
    built = application.read_side.generations("sales_analytics").built
    assert built is not None and (built.version, built.reason) == (SALES, "operator")
    assert built.requested_by is not None and built.requested_by.startswith("shop CLI (")
    printed = CliRunner().invoke(cli.main, ["projections", "status"]).output
    (line,) = [line for line in printed.splitlines() if line.startswith("sales_analytics ")]
    assert line.split()[:3] == ["sales_analytics", "4", f"{SALES},"]
    assert "operator" in line


def test_the_openapi_document_describes_versions_and_rebuild_reasons(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    projection = schemas["ProjectionStatus"]
    for field in ("version", "reason", "requested_by", "code_version"):
        assert field in projection["required"] and projection["properties"][field]["description"]
    assert projection["properties"]["version"]["nullable"] is True
    assert {"$ref": "#/components/schemas/RebuildStatus"} in projection["properties"]["rebuild"][
        "anyOf"
    ]
    rebuild = schemas["RebuildStatus"]
    assert {"generation", "version", "reason", "requested_by", "started_at"} <= set(
        rebuild["required"]
    )
    assert "`version 1 -> 2`" in rebuild["properties"]["reason"]["description"]
    answers = spec["paths"]["/admin/api/projections/{name}/rebuild"]["post"]["responses"]
    assert "newer version" in answers["409"]["description"]
