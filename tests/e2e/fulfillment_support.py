"""Shared by the order-fulfillment end-to-end suites: the real processes (a gunicorn API and
`rq worker`s), a storefront and admin driven over HTTP, signed webhooks, bounded polling.

The tests wait for outcomes by polling with a deadline; nothing sleeps a fixed time
and then asserts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from redis import Redis
from rq import Worker
from sqlalchemy import Engine, text

from config.settings import Settings
from payments.webhooks import SIGNATURE_HEADER, sign, simulated_notification
from projections import generations, order_detail
from sagas.order_fulfillment import _IDS as SAGA_COMMAND_IDS
from tests.support.processes import BIN, ROOT, environment, free_port, http, wait_until_ready

T = TypeVar("T")

WORKER = [
    str(BIN / "rq"),
    "worker",
    "-c",
    "config.rq_settings",
    "-w",
    "config.worker.ShopWorker",
    "--with-scheduler",
    "shop-sagas",
    "shop-projections",
]
SAGA_ACTOR = "saga:order_fulfillment"
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}


def eventually(check: Callable[[], T], timeout: float = 20, interval: float = 0.1) -> T:
    """`check()`'s value once it stops failing its assertions; its last failure at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)


# --- the processes --------------------------------------------------------------------


@dataclass
class System:
    """A running API and its workers, sharing the test session's database and Redis."""

    url: str
    settings: Settings
    api: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    logs: Path

    def assert_alive(self) -> None:
        for process in (self.api, *self.workers):
            assert process.poll() is None, f"a process exited:\n{self.tail()}"

    def tail(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.logs.glob("*.log"))
        )


@contextlib.contextmanager
def running_system(
    settings: Settings, logs: Path, *, workers: int, payment_timeout: float
) -> Iterator[System]:
    """Start `gunicorn wsgi:app` and `workers` RQ workers; stop them all on the way out."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = environment(
        settings, PUBLIC_URL=url, PAYMENT_TIMEOUT=str(payment_timeout), SWEEP_INTERVAL="1"
    )
    command = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "wsgi:app"]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        api = _start(command, env, logs / "api.log")
        processes.append(api)
        rq_workers = [_start(WORKER, env, logs / f"worker-{n}.log") for n in range(workers)]
        processes += rq_workers
        system = System(url, settings, api, rq_workers, logs)
        try:
            wait_until_ready(url, api)
            _wait_for_workers(system)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{system.tail()}") from error
        yield system
    finally:
        _stop(processes)


def _wait_for_workers(system: System) -> None:
    redis = Redis.from_url(system.settings.require()[1])
    pids = {process.pid for process in system.workers}
    try:

        def registered() -> None:
            system.assert_alive()
            assert pids <= {worker.pid for worker in Worker.all(connection=redis)}

        eventually(registered, timeout=60)
    finally:
        redis.close()


def _start(command: Sequence[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Like tests.support.processes.start, in a process group of its own, so that stopping
    it also reaches what it forked (gunicorn's workers, an RQ worker's scheduler)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(command),
            cwd=ROOT,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each group, give it 15 s to shut down cleanly, then SIGKILL a group still up."""
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    for process in processes:
        if process.poll() is None:  # the whole group goes, so no forked child is orphaned
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


# --- the storefront and the admin, over HTTP --------------------------------------------


@dataclass(frozen=True)
class Shopper:
    customer_id: str
    headers: dict[str, str]


class Storefront:
    """Customers, the admin and the payment provider, each as the API sees them."""

    def __init__(self, system: System) -> None:
        self.url = system.url
        self.settings = system.settings
        self.admin = {"Authorization": f"Bearer {system.settings.admin_token}"}

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] = {},
        *,
        expect: int | None = None,
    ) -> Any:
        status, answer = http(method, self.url + path, body, headers)
        if expect is not None:
            assert status == expect, f"{method} {path} -> {status} {answer}"
        return answer

    def add_product(self, sku: str, stock: int, amount: int = 1250, currency: str = "EUR") -> None:
        product = {
            "sku": sku,
            "name": f"Product {sku}",
            "price": {"amount": amount, "currency": currency},
            "stock": stock,
        }
        self.call("POST", "/admin/api/products", product, self.admin, expect=202)

    def register(self, email: str) -> Shopper:
        body = self.call(
            "POST", "/api/customers", {"email": email, "name": "A Customer"}, expect=201
        )
        return Shopper(body["customer_id"], {"Authorization": f"Bearer {body['token']}"})

    def place(
        self,
        shopper: Shopper,
        lines: Mapping[str, int],
        token: str,
        *,
        correlation_id: str | None = None,
    ) -> str:
        body = {
            "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines.items()],
            "shipping_address": ADDRESS,
            "payment": {"token": token},
        }
        headers = dict(shopper.headers)
        if correlation_id:
            headers["X-Correlation-ID"] = correlation_id
        placed = self.call("POST", "/api/orders", body, headers, expect=202)
        assert placed["status"] == "pending"
        order_id: str = placed["order_id"]
        return order_id

    def cancel(self, shopper: Shopper, order_id: str, reason: str) -> None:
        path = f"/api/orders/{order_id}/cancel"
        self.call("POST", path, {"reason": reason}, shopper.headers, expect=202)

    def ship(self, order_id: str, tracking_number: str) -> str:
        path = f"/admin/api/orders/{order_id}/ship"
        body = {"tracking_number": tracking_number}
        accepted = self.call("POST", path, body, self.admin, expect=202)
        token: str = accepted["consistency_token"]
        return token

    def available(self) -> dict[str, int]:
        """Available stock per SKU, as the storefront's catalog shows it."""
        items = self.call("GET", "/api/products", expect=200)["items"]
        return {item["sku"]: item["available"] for item in items}

    def saga(self, order_id: str) -> dict[str, Any] | None:
        listed = self.call("GET", "/admin/api/sagas?limit=200", headers=self.admin, expect=200)
        found = [item for item in listed["items"] if item["order_id"] == order_id]
        return found[0] if found else None

    def wait_for_saga(self, order_id: str, timeout: float = 20, **expected: str) -> dict[str, Any]:
        """The order's saga once each field in `expected` has the expected value."""

        def check() -> dict[str, Any]:
            saga = self.saga(order_id)
            assert saga is not None, f"no saga for {order_id} yet"
            seen = {name: saga[name] for name in expected}
            assert seen == expected, f"saga {order_id}: {seen} (history {saga['history']})"
            return saga

        return eventually(check, timeout=timeout)

    def order(self, order_id: str, consistency_token: str | None = None) -> dict[str, Any]:
        """The admin's view: the order document and every event about it."""
        query = f"?consistency_token={consistency_token}" if consistency_token else ""
        path = f"/admin/api/orders/{order_id}{query}"
        found: dict[str, Any] = self.call("GET", path, headers=self.admin, expect=200)
        return found

    def wait_for_order(
        self,
        order_id: str,
        status: str,
        events: Sequence[str] = (),
        *,
        consistency_token: str | None = None,
        timeout: float = 20,
    ) -> dict[str, Any]:
        """The admin's view once the order has `status`, its history (read from the log)
        holds `events`, and the order document has applied every event of that history."""

        def check() -> dict[str, Any]:
            found = self.order(order_id, consistency_token)
            types = types_of(found["history"])
            missing = [name for name in events if name not in types]
            assert not missing, f"order {order_id} lacks {missing}: {types}"
            document = found["order"]
            applied = [moment["event"] for moment in document["timeline"]]
            assert applied == [name for name in types if order_detail.handlers.handles(name)], (
                f"the order document of {order_id} is behind its history: {applied} / {types}"
            )
            assert document["status"] == status, (document["status"], types)
            return found

        return eventually(check, timeout=timeout)

    def post_webhook(
        self,
        order_id: str,
        provider_event_id: str,
        *,
        outcome: str = "succeeded",
        secret: str | None = None,
    ) -> tuple[int, Any]:
        """Deliver the provider's notification signed with `secret` (the right one by default)."""
        body = simulated_notification(order_id, outcome, None, provider_event_id)
        key = secret if secret is not None else self.settings.payment_webhook_secret
        request = urllib.request.Request(
            self.url + "/webhooks/payments",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(key, body, int(time.time())),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            answer = json.loads(error.read() or b"null")
            error.close()
            return error.code, answer


# --- reading what happened ----------------------------------------------------------------


def types_of(history: Sequence[Mapping[str, Any]]) -> list[str]:
    return [event["type"] for event in history]


def command_id(cause_message_id: str, index: int = 0) -> str:
    """The id the saga gives the `index`-th command it issues in reaction to one event."""
    return str(uuid.uuid5(SAGA_COMMAND_IDS, f"{cause_message_id}/{index}"))


def cause_of(event: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The earlier event of `history` whose saga command recorded `event`.

    A command's events carry the command's id as causation id, and the saga derives
    each command id from the event it reacts to, so the link is checkable end to end.
    """
    for candidate in history:
        if candidate["position"] >= event["position"]:
            break
        for index in range(3):
            if command_id(candidate["message_id"], index) == event["causation_id"]:
                return candidate
    raise AssertionError(f"{event['type']} at {event['position']} has no cause in the history")


def saga_triggers(saga: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """(what the saga reacted to, the commands it issued and how they went), in order."""
    return [(moment["trigger"], list(moment["commands"])) for moment in saga["history"]]


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def on_hand(engine: Engine) -> dict[str, int]:
    """Stock on hand per SKU in the catalog read model (the storefront shows `available`)."""
    with engine.connect() as conn:
        active = generations.read(conn, "catalog").active
        rows = conn.execute(
            text("SELECT sku, on_hand FROM catalog_products WHERE generation = :g"), {"g": active}
        ).all()
    return {sku: int(value) for sku, value in rows}
