from __future__ import annotations

import os
import signal
from pathlib import Path

from redis import Redis
from rq import Worker

from config.queues import PAYMENTS, QUEUES
from config.settings import Settings
from tests.support.api_client import ApiClient, call
from tests.support.payments import SUCCEEDS, payment_intent
from tests.support.polling import eventually
from tests.support.processes import (
    BIN,
    Processes,
    environment,
    free_port,
    port_is_open,
    wait_until_ready,
)


def test_shop_run_serves_a_ready_api_with_workers_that_confirm_an_order_and_stops_on_ctrl_c(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    # `shop run` empties its metrics directory on start: keep it away from this process's.
    env = environment(settings, PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    with Processes(tmp_path) as processes:
        run = processes.start("run", [str(BIN / "shop"), "run", "--workers", "1"], env)
        base_url = f"http://127.0.0.1:{port}"
        wait_until_ready(base_url, run)

        def ready() -> None:  # "degraded" until its worker, starting beside the API, drains
            body = call("GET", f"{base_url}/readyz").body
            assert body == {
                "status": "ready",
                "checks": {
                    "postgres": "ok",
                    "redis": "ok",
                    "migrations": "ok",
                    "subscriptions": "ok",
                },
            }, body

        eventually(ready, timeout=60, interval=0.5)
        _wait_for_workers(settings, run.popen.pid)
        # An order goes the whole way: the worker runs the saga, a payments worker charges
        # the card at the configured Stripe (the session's local one).
        api = ApiClient(base_url, settings.admin_token or "")
        customer = api.register("run@example.com").headers
        placed = api.place(customer, {"MUG-001": 1}, SUCCEEDS)  # seeded by `shop run`
        assert placed.status == 202, placed.body

        def confirmed() -> str:
            reply = api("GET", f"/api/orders/{placed.body['order_id']}", None, customer)
            assert reply.status == 200, reply.body
            order = reply.body["order"]
            assert order["status"] == "confirmed", order
            return str(order["payment"]["reference"])

        intent = payment_intent(settings, eventually(confirmed, timeout=30, interval=0.2))
        assert intent["status"] == "succeeded"
        assert intent["metadata"]["order_id"] == placed.body["order_id"]

        run.popen.send_signal(signal.SIGINT)
        assert run.popen.wait(timeout=30) == 0
        assert not port_is_open(port)
    printed = run.log.read_text()
    assert "Admin token: test-admin-token" in printed
    assert f"Stripe API:  {settings.stripe_api_base}" in printed


def _wait_for_workers(settings: Settings, group: int) -> None:
    """`shop run` starts its workers itself, in its process group: one on the saga and
    read-model queues, two on the payments queue."""
    redis = Redis.from_url(settings.require()[1])
    try:

        def registered() -> None:
            queues = sorted(
                tuple(worker.queue_names())
                for worker in Worker.all(connection=redis)
                if worker.pid is not None and _group_of(worker.pid) == group
            )
            assert queues == sorted([QUEUES, (PAYMENTS,), (PAYMENTS,)]), queues

        eventually(registered, timeout=10, interval=0.2)
    finally:
        redis.close()


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
