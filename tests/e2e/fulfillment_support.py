"""Shared by the order-fulfillment end-to-end suites: the real processes (a gunicorn API,
`rq worker`s, payments workers and `rq cron`), the local Stripe they pay through, a
storefront and admin driven over HTTP, Stripe's webhook deliveries, and reading what
happened in the API, the log and at the provider.

The tests wait for outcomes by polling with a deadline (tests.support.polling); nothing
sleeps a fixed time and then asserts.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import stripe
from sqlalchemy import Engine, text

from config.settings import Settings
from localdev.stripe_webhooks import register_webhook
from projections import generations, order_detail
from sagas.order_fulfillment import _IDS as SAGA_COMMAND_IDS
from tests.support.api_client import ApiClient, Customer, Reply, call
from tests.support.polling import eventually
from tests.support.processes import (
    Process,
    Processes,
    environment,
    free_port,
    wait_for_workers,
    wait_until_ready,
)

SAGA_ACTOR = "saga:order_fulfillment"
PROVIDER_ACTOR = "payment-provider"
WEBHOOK_PATH = "/webhooks/stripe"
SIGNATURE_HEADER = "Stripe-Signature"
WEBHOOK_ID = "shop"

# Stripe's test payment methods (https://docs.stripe.com/testing), as the local Stripe knows them.
CARD_OK = "pm_card_visa"
CARD_DECLINED = "pm_card_visa_chargeDeclined"  # card_declined / generic_decline
CARD_NO_FUNDS = "pm_card_visa_chargeDeclinedInsufficientFunds"  # insufficient_funds
CARD_3DS = "pm_card_authenticationRequired"  # requires_action until the customer authenticates


# --- the payment provider: a local Stripe ---------------------------------------------------


class Provider:
    """A local Stripe as its other users see it: the shop's account through the official
    SDK (what was charged and refunded), the customer completing 3-D Secure, and the
    webhook endpoint Stripe delivers events to."""

    def __init__(self, api_base: str, api_key: str, webhook_secret: str) -> None:
        self.api_base = api_base
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.client = stripe.StripeClient(
            api_key, base_addresses={"api": api_base}, max_network_retries=0
        )

    @classmethod
    def of(cls, settings: Settings) -> Provider:
        api_key, secret = settings.require_stripe()
        assert settings.stripe_api_base, "the tests pay through a local Stripe"
        return cls(settings.stripe_api_base, api_key, secret)

    def answers(self) -> None:
        """Fails (an AssertionError, for `eventually`) while the API does not answer."""
        try:
            self.client.v1.payment_intents.list(params={"limit": 1})
        except stripe.APIConnectionError as error:
            raise AssertionError(f"{self.api_base} does not answer: {error}") from None

    def point_webhook(self, url: str) -> None:
        """Have Stripe deliver every event to `url` (localstripe's one endpoint "shop")."""
        register_webhook(self.api_base, url, self.webhook_secret, webhook_id=WEBHOOK_ID)

    def intent(self, intent_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.client.v1.payment_intents.retrieve(intent_id).to_dict()
        return found

    def charge(self, charge_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.client.v1.charges.retrieve(charge_id).to_dict()
        return found

    def intents(self) -> list[dict[str, Any]]:
        """Every PaymentIntent of the account, through every page."""
        pages = self.client.v1.payment_intents.list(params={"limit": 100})
        return [intent.to_dict() for intent in pages.auto_paging_iter()]

    def intents_by_order(self) -> dict[str, list[dict[str, Any]]]:
        """Every PaymentIntent, by the order its metadata names."""
        found: dict[str, list[dict[str, Any]]] = {}
        for intent in self.intents():
            order_id = (intent.get("metadata") or {}).get("order_id")
            if order_id:
                found.setdefault(order_id, []).append(intent)
        return found

    def intents_of(self, order_id: str) -> list[dict[str, Any]]:
        return self.intents_by_order().get(order_id, [])

    def authenticate(
        self, intent_id: str, client_secret: str, *, success: bool = True, timeout: float = 10
    ) -> tuple[int, dict[str, Any]]:
        """The customer completes 3-D Secure, as Stripe.js does with the client secret the
        shop handed out and the publishable key; the provider's answer (status and body,
        the intent as it stands afterwards unless refused)."""
        form = {"client_secret": client_secret, "success": "true" if success else "false"}
        request = urllib.request.Request(
            f"{self.api_base}/v1/payment_intents/{intent_id}/_authenticate",
            data=urllib.parse.urlencode({**form, "key": "pk_test_shop"}).encode(),
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as refused:
            with refused:
                return refused.code, json.loads(refused.read() or b"{}")


def signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header for `body`: `t=<ts>,v1=<HMAC-SHA256(secret, "<ts>.<body>")>`."""
    at = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


@dataclass(frozen=True)
class Delivery:
    """One webhook request as the provider sent it."""

    body: bytes
    signature: str

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class WebhookCatcher:
    """An endpoint to point the provider's webhook at instead of the API (an endpoint
    misconfigured, or one the provider cannot reach): it keeps each delivery exactly as
    sent (body and signature) and answers `status`, a failure by default."""

    def __init__(self, status: int = 503) -> None:
        self.status = status
        self.deliveries: list[Delivery] = []
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                catcher.deliveries.append(Delivery(body, self.headers.get(SIGNATURE_HEADER, "")))
                self.send_response(catcher.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{WEBHOOK_PATH}"

    def __enter__(self) -> WebhookCatcher:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, event_type: str, about: str, timeout: float = 20) -> Delivery:
        """The delivery of the `event_type` event about `about` (a PaymentIntent id)."""

        def delivered() -> Delivery:
            found = [d for d in self.deliveries if _is_about(d.event, event_type, about)]
            assert found, f"no {event_type} about {about} delivered: {len(self.deliveries)} others"
            return found[0]

        return eventually(delivered, timeout=timeout)


def _is_about(event: Mapping[str, Any], event_type: str, intent_id: str) -> bool:
    """Whether `event` is of `event_type` and about the PaymentIntent `intent_id` (itself,
    or a charge of it)."""
    about = event.get("data", {}).get("object", {})
    owner = about.get("payment_intent") if about.get("object") == "charge" else about.get("id")
    return bool(event.get("type") == event_type and owner == intent_id)


# --- the processes --------------------------------------------------------------------


@dataclass
class System:
    """A running API and its workers, sharing the test session's database and Redis, and
    paying through `provider` (the session's local Stripe, or one of its own)."""

    url: str
    settings: Settings  # as the processes run: stripe_api_base is `provider`'s
    processes: Processes
    env: dict[str, str]
    provider: Provider
    provider_process: Process | None = None  # when the system has a local Stripe of its own

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    def assert_alive(self) -> None:
        for process in self.processes.started:
            assert process.alive, f"{process.name} exited:\n{self.tail()}"

    def tail(self) -> str:
        return self.processes.tails()

    @contextlib.contextmanager
    def webhook_diverted(self, catcher: WebhookCatcher) -> Iterator[WebhookCatcher]:
        """The provider delivers its events to `catcher` (serving meanwhile), not the API,
        until the block ends."""
        with catcher:
            self.provider.point_webhook(catcher.url)
            try:
                yield catcher
            finally:
                self.provider.point_webhook(self.webhook_url)


@contextlib.contextmanager
def running_system(
    settings: Settings,
    logs: Path,
    *,
    workers: int,
    payment_timeout: float,
    payments_workers: int = 1,
    own_provider: bool = False,
    **env: str,
) -> Iterator[System]:
    """Start `gunicorn wsgi:app`, `workers` RQ workers (the first with `rq cron` and a
    payments worker), `payments_workers` payments workers in all and, with `own_provider`,
    a local Stripe of the system's own; point the provider's webhook at the API; stop them
    all on the way out. `env`: more settings for every process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with Processes(logs) as processes:
        provider_process = None
        if own_provider:
            provider_process, api_base = start_local_stripe(processes, logs)
            settings = replace(settings, stripe_api_base=api_base)
        provider = Provider.of(settings)
        provider.answers()
        variables = environment(
            settings,
            PUBLIC_URL=url,
            PAYMENT_TIMEOUT=str(payment_timeout),
            SWEEP_INTERVAL="1",
            **env,
        )
        api = processes.api(variables, port)
        for _ in range(workers):
            processes.worker(variables)
        for _ in range(payments_workers - 1):
            processes.payments_worker(variables)
        rq_workers = [p for p in processes.started if p.name in ("worker", "payments-worker")]
        system = System(url, settings, processes, variables, provider, provider_process)
        try:
            wait_until_ready(url, api)
            wait_for_workers(settings.require()[1], rq_workers)
            provider.point_webhook(system.webhook_url)
            system.assert_alive()
            yield system
        finally:
            _stop_promptly(processes)


def _stop_promptly(processes: Processes, patience: float = 3) -> None:
    """Ask every process to stop (SIGCONT first: one may have been frozen); an RQ worker
    still in its warm shutdown after `patience` seconds (waiting on its scheduler) gets
    RQ's second signal, a cold shutdown. `Processes.close` then waits for them all."""
    for process in processes.started:
        for sig in (signal.SIGCONT, signal.SIGTERM):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, sig)
    deadline = time.monotonic() + patience
    for process in processes.started:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(timeout=max(0.05, deadline - time.monotonic()))
    for process in processes.started:
        if process.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGTERM)


def start_local_stripe(processes: Processes, logs: Path) -> tuple[Process, str]:
    """`python -m localdev.stripe_server` on a free port with its state under `logs`;
    the process and its API's base URL, once it answers."""
    port = free_port()
    state = logs / f"stripe-{port}.pickle"
    command = [sys.executable, "-m", "localdev.stripe_server", "--port", str(port)]
    process = processes.start("stripe", [*command, "--state", str(state)], dict(os.environ))
    api_base = f"http://127.0.0.1:{port}"
    provider = Provider(api_base, "sk_test_probe", "unused")

    def answering() -> None:
        assert process.alive, process.tail()
        provider.answers()

    eventually(answering, timeout=30, interval=0.1)
    return process, api_base


# --- the storefront and the admin, over HTTP --------------------------------------------


class Storefront:
    """Customers, the admin and the payment provider's webhook, each as the API sees them;
    every request but a webhook must be accepted."""

    def __init__(self, system: System) -> None:
        self.url = system.url
        self.settings = system.settings
        self.provider = system.provider
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
        payment_method: str,
        *,
        correlation_id: str | None = None,
    ) -> str:
        reply = self.api.place(
            shopper.headers, lines, payment_method, correlation_id=correlation_id
        )
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

    def payment(self, shopper: Customer, order_id: str) -> dict[str, Any]:
        """The order's payment as its customer sees it (with, during 3-D Secure, what
        Stripe.js needs)."""
        found: dict[str, Any] = self.call(
            "GET", f"/api/orders/{order_id}/payment", headers=shopper.headers, expect=200
        )
        return found

    def secure_action(self, shopper: Customer, order_id: str) -> tuple[str, str]:
        """The PaymentIntent and client secret the customer's 3-D Secure step needs, as the
        shop hands them to Stripe.js, once the charge waits on the customer."""

        def due() -> tuple[str, str]:
            payment = self.payment(shopper, order_id)
            action = payment["action"]
            assert payment["status"] == "pending" and action is not None, payment
            assert action["status"] == "requires_action", action
            return action["payment_intent"], action["client_secret"]

        return eventually(due, timeout=20)

    def complete_3d_secure(self, shopper: Customer, order_id: str) -> str:
        """The customer authenticates at the provider (successfully); the PaymentIntent."""
        intent_id, client_secret = self.secure_action(shopper, order_id)
        status, answer = self.provider.authenticate(intent_id, client_secret)
        assert (status, answer.get("status")) == (200, "succeeded"), (status, answer)
        return intent_id

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

    def settled_order(self, order_id: str) -> dict[str, Any]:
        """The admin's view, failing (for `eventually`) unless the order document has
        applied every event of the order's history."""
        reply = self.api("GET", f"/admin/api/orders/{order_id}", headers=self.admin)
        assert reply.status == 200, f"order {order_id}: {reply.status} {reply.body}"
        found: dict[str, Any] = reply.body
        types = types_of(found["history"])
        applied = [moment["event"] for moment in found["order"]["timeline"]]
        assert applied == [name for name in types if order_detail.handlers.handles(name)], (
            f"the order document of {order_id} is behind its history: {applied} / {types}"
        )
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
            if consistency_token is not None:
                self.order(order_id, consistency_token)
            found = self.settled_order(order_id)
            types = types_of(found["history"])
            missing = [name for name in events if name not in types]
            assert not missing, f"order {order_id} lacks {missing}: {types}"
            assert found["order"]["status"] == status, (found["order"]["status"], types)
            return found

        return eventually(check, timeout=timeout)

    def deliver(self, body: bytes, signed: str | None) -> Reply:
        """POST `body` to the API's Stripe webhook with `signed` as its Stripe-Signature."""
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if signed is not None:
            headers[SIGNATURE_HEADER] = signed
        return call("POST", self.url + WEBHOOK_PATH, body, headers, timeout=15)

    def redeliver(self, delivery: Delivery) -> Reply:
        """The provider's delivery again, exactly as it was sent (body and signature)."""
        return self.deliver(delivery.body, delivery.signature)


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


def events_of(engine: Engine, event_type: str, order_id: str | None = None) -> list[dict[str, Any]]:
    """The data of every `event_type` event (about `order_id`, if given), in log order."""
    query = "SELECT data FROM events WHERE type = :type"
    if order_id is not None:
        query += " AND data ->> 'order_id' = :id"
    with engine.connect() as conn:
        rows = conn.execute(
            text(query + " ORDER BY transaction_id, position"), {"type": event_type, "id": order_id}
        ).scalars()
        return [dict(row) for row in rows]


def event_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())


@dataclass(frozen=True)
class InboxRow:
    provider_event_id: str
    payload: dict[str, Any]


def inbox(engine: Engine) -> list[InboxRow]:
    """The webhook inbox: every provider event the API received, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT provider_event_id, payload FROM payment_webhook_inbox"
                " ORDER BY received_at, provider_event_id"
            )
        ).all()
    return [InboxRow(event_id, payload) for event_id, payload in rows]


def inbox_about(engine: Engine, event_type: str, intent_id: str) -> list[InboxRow]:
    """The inbox rows of `event_type` events about the PaymentIntent `intent_id`."""
    return [row for row in inbox(engine) if _is_about(row.payload, event_type, intent_id)]


def wait_for_inbox(
    engine: Engine, event_type: str, intent_id: str, timeout: float = 20
) -> InboxRow:
    """The inbox row of the provider's `event_type` event about `intent_id`, once its
    webhook has been received (and, in the same transaction, acted on)."""

    def received() -> InboxRow:
        rows = inbox_about(engine, event_type, intent_id)
        assert len(rows) == 1, f"{event_type} about {intent_id}: {len(rows)} inbox rows"
        return rows[0]

    return eventually(received, timeout=timeout)
