"""A rolling deploy of a read model change with real `rq worker` processes: a worker of the
next release, started beside those of the running one, rebuilds the read model in the
background and switches once it has caught up, with no manual step; queries answer all
along, and the previous release's workers, still running, do not switch it back."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from config.bootstrap import Application, bootstrap
from config.flask_app import create_app
from config.settings import Settings
from kernel.subscriptions import Subscriber
from projections import order_detail
from projections.generations import Build
from tests.support.event_log import whole_log
from tests.support.payments import SUCCEEDS, provider_calls_due
from tests.support.polling import eventually
from tests.support.processes import (
    WORKER_COMMAND,
    Processes,
    environment,
    wait_for_workers,
)
from tests.support.read_models import ALL_MODELS, contents, rebuilt_from_zero
from tests.support.shop import CATALOG, Shop

NEXT_RELEASE_WORKER = [
    arg.replace("config.worker", "tests.e2e.next_release") for arg in WORKER_COMMAND
]


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with Processes(tmp_path_factory.mktemp("deploy")) as started:
        yield started


@pytest.fixture
def api(settings: Settings) -> Iterator[FlaskClient]:
    """The running release's API, its queries waiting up to 10 s for a token: room for a
    busy 2-core machine."""
    application = bootstrap(dataclasses.replace(settings, read_wait_timeout=10))
    app = create_app(application)
    app.testing = True
    yield app.test_client()
    application.close()


OLD = order_detail.VERSION  # the running release's; the next one's is one higher


def _caught_up(application: Application) -> None:
    """Every live generation of every read model, whatever version built it, and the
    saga have applied the whole log, and no provider call is due."""
    assert not provider_calls_due(application.engine)
    subscribers: list[Subscriber] = [application.saga]
    for name in ALL_MODELS:
        subscribers += application.read_side.live_subscribers(name)
    for status in application.runner.status(subscribers):
        assert (status.state, status.lag_events) == ("caught_up", 0), status.name


def test_a_worker_of_the_next_release_rebuilds_the_changed_read_model_without_downtime(
    application: Application,
    settings: Settings,
    processes: Processes,
    api: FlaskClient,
    admin_headers: dict[str, str],
) -> None:
    env = environment(settings, SWEEP_INTERVAL="1")
    running = [processes.worker(env) for _ in range(2)]
    wait_for_workers(settings.require()[1], running)
    shop = Shop(application.bus)
    shop.add_products(CATALOG)
    customers = [shop.customer(f"c{n}@example.com") for n in range(3)]
    placed = [shop.place(customers[n % 3], {"MUG-1": 1 + n % 2}, SUCCEEDS) for n in range(20)]
    eventually(lambda: _caught_up(application), timeout=60)
    assert application.read_side.generations("order_detail").built == Build(OLD, None, None)

    # Queries and orders keep coming during the deploy; every query must be answered.
    answers: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        n = 0
        while not stop.is_set():
            order = shop.place(customers[n % 3], {"TEE-1": 1}, SUCCEEDS)
            path = f"/admin/api/orders/{order.order_id}?consistency_token={order.consistency_token}"
            answers.append(api.get(path, headers=admin_headers).status_code)
            n += 1

    flowing = threading.Thread(target=traffic)
    flowing.start()
    try:
        next_release = processes.start("worker-next", NEXT_RELEASE_WORKER, env)
        wait_for_workers(settings.require()[1], [next_release])
        worker = f"{socket.gethostname()}:{next_release.popen.pid}"

        def switched() -> None:
            current = application.read_side.generations("order_detail")
            assert (current.active, current.building) == (2, None), current
            assert current.built == Build(OLD + 1, f"version {OLD} -> {OLD + 1}", worker)

        eventually(switched, timeout=90, interval=0.2)
        eventually(lambda: len(answers) >= 5, timeout=30)  # some after the switch, too
    finally:
        stop.set()
        flowing.join(timeout=60)
    assert answers and set(answers) == {200}, answers

    eventually(lambda: _caught_up(application), timeout=60)
    assert contents(application, "order_detail", 1) == {"order_details": []}
    rebuilt = contents(application, "order_detail", 2)
    assert rebuilt == rebuilt_from_zero(application, "order_detail")
    orders = {e.data["order_id"] for e in whole_log(application) if e.type == "OrderPlaced"}
    assert len(rebuilt["order_details"]) == len(orders) > len(placed)
    for name in ("catalog", "sales_analytics", "order_list"):
        assert application.read_side.generations(name).active == 1, name
    # The running release's workers swept all along and still do: nothing went back.
    assert application.read_side.generations("order_detail").built == Build(
        OLD + 1, f"version {OLD} -> {OLD + 1}", worker
    )
    assert all(process.alive for process in [*running, next_release]), processes.tails()
