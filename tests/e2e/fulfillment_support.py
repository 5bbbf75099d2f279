"""Shared by the order-fulfillment end-to-end suites: the real processes (a gunicorn API and
`rq worker`s), a storefront and admin driven over HTTP, signed webhooks, and reading what
happened.

The tests wait for outcomes by polling with a deadline (tests.support.polling); nothing
sleeps a fixed time and then asserts.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from config.settings import Settings
from payments.webhooks import SIGNATURE_HEADER, sign, simulated_notification
from projections import generations, order_detail
from sagas.order_fulfillment import _IDS as SAGA_COMMAND_IDS
from tests.support.api_client import ApiClient, Customer, call
from tests.support.polling import eventually
from tests.support.processes import (
    Processes,
    environment,
    free_port,
    wait_for_workers,
    wait_until_ready,
)

SAGA_ACTOR = "saga:order_fulfillment"


# --- the processes --------------------------------------------------------------------


@dataclass
class System:
    """A running API and its workers, sharing the test session's database and Redis."""

    url: str
    settings: Settings
    processes: Processes

    def assert_alive(self) -> None:
        for process in self.processes.started:
            assert process.alive, f"a process exited:\n{self.tail()}"

    def tail(self) -> str:
        return self.processes.tails()


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
    with Processes(logs) as processes:
        system = System(url, settings, processes)
        api = processes.api(env, port)
        rq_workers = [processes.worker(env) for _ in range(workers)]
        wait_until_ready(url, api)
        wait_for_workers(settings.require()[1], rq_workers)
        system.assert_alive()
        yield system


# --- the storefront and the admin, over HTTP --------------------------------------------


class Storefront:
    """Customers, the admin and the payment provider, each as the API sees them; every
    request but a webhook must be accepted."""

    def __init__(self, system: System) -> None:
        self.url = system.url
        self.settings = system.settings
        self.api = ApiClient(system.url, system.settings.admin_token or "")
        self.admin = self.api.admin

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] = {},
        *,
        expect: int | None = None,
    ) -> Any:
        reply = self.api(method, path, body, headers)
        if expect is not None:
            assert reply.status == expect, f"{method} {path} -> {reply.status} {reply.body}"
        return reply.body

    def add_product(self, sku: str, stock: int, amount: int = 1250, currency: str = "EUR") -> None:
        self.api.add_product(sku, stock=stock, amount=amount, currency=currency)

    def register(self, email: str) -> Customer:
        return self.api.register(email)

    def place(
        self,
        shopper: Customer,
        lines: Mapping[str, int],
        token: str,
        *,
        correlation_id: str | None = None,
    ) -> str:
        reply = self.api.place(shopper.headers, lines, token, correlation_id=correlation_id)
        assert reply.status == 202, f"POST /api/orders -> {reply.status} {reply.body}"
        assert reply.body["status"] == "pending"
        order_id: str = reply.body["order_id"]
        return order_id

    def cancel(self, shopper: Customer, order_id: str, reason: str) -> None:
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
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(key, body, int(time.time())),
        }
        reply = call("POST", self.url + "/webhooks/payments", body, headers, timeout=10)
        return reply.status, reply.body


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


def on_hand(engine: Engine) -> dict[str, int]:
    """Stock on hand per SKU in the catalog read model (the storefront shows `available`)."""
    with engine.connect() as conn:
        active = generations.read(conn, "catalog").active
        rows = conn.execute(
            text("SELECT sku, on_hand FROM catalog_products WHERE generation = :g"), {"g": active}
        ).all()
    return {sku: int(value) for sku, value in rows}
