"""The system under test as the bench sees it: its database, API, workers and data."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from redis import Redis
from rq import Worker
from sqlalchemy import make_url, text

from bench.cpu import OBSERVER, CpuMeter
from bench.env import NO_STRIPE, WEBHOOK_PATH, Processes, environment, libpq
from config.bootstrap import Application, bootstrap
from config.cli import PAYMENT_WORKERS
from config.settings import Settings
from inventory.commands import AddProduct
from kernel.event_store import Checkpoint
from kernel.messages import Metadata
from kernel.money import Money
from kernel.partitions import slots_of
from localdev.stripe_webhooks import register_webhook

PRODUCTS = (("BENCH-MUG", "Stoneware mug", 1200), ("BENCH-TEE", "Black T-shirt, M", 2500))
PLENTY = 1_000_000_000
PASSWORD = "bench customer password"  # every bench customer's
OWN = f"application_name={OBSERVER}"
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Main St",
    "city": "London",
    "postal_code": "N1 1AA",
    "country": "GB",
}


def order_body(token: str = "pm_card_visa") -> dict[str, Any]:
    return {
        "lines": [{"sku": PRODUCTS[0][0], "quantity": 2}, {"sku": PRODUCTS[1][0], "quantity": 1}],
        "shipping_address": ADDRESS,
        "payment": {"token": token},
    }


def http_json(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


@dataclass
class Customer:
    customer_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Shop:
    settings: Settings
    processes: Processes
    application: Application
    api: str = ""
    baseline: str = ""
    customers: list[Customer] = field(default_factory=list)
    workers: list[Any] = field(default_factory=list)
    payments_workers: list[Any] = field(default_factory=list)
    cron: Any = None
    api_process: Any = None
    baseline_process: Any = None

    @classmethod
    def build(cls, settings: Settings, processes: Processes) -> Shop:
        # The bench's own sessions (status polls, checkpoints, seeding) are named, so that
        # CPU accounting leaves them out; the processes under test use `settings`.
        url = settings.require()[0]
        own = replace(settings, database_url=f"{url}{'&' if '?' in url else '?'}{OWN}")
        return cls(settings, processes, bootstrap(own))

    def env(self, **extra: str) -> dict[str, str]:
        return environment(self.settings, **extra)

    def seed_products(self, stock: int = PLENTY) -> None:
        for sku, name, price in PRODUCTS:
            self.add_product(sku, name, price, stock)

    def add_product(self, sku: str, name: str, price: int, stock: int) -> None:
        command = AddProduct(sku, name, Money(price, "EUR"), stock)
        result = self.application.bus.dispatch(command, Metadata(actor="bench"))
        if not result.ok and getattr(result, "code", "") != "product_exists":
            raise RuntimeError(f"could not add {sku}: {result}")

    def start_api(self) -> None:
        self.api, self.api_process = self.processes.gunicorn(
            "api", "wsgi:app", self.env(LOG_LEVEL="WARNING")
        )
        self.baseline, self.baseline_process = self.processes.gunicorn(
            "baseline", "bench.minimal_app:app", self.env(LOG_LEVEL="WARNING")
        )
        if self.settings.stripe_api_base not in (None, NO_STRIPE):
            self.register_webhook(self.settings.stripe_api_base or "")

    def register_webhook(self, stripe_url: str) -> None:
        """Have the local Stripe at `stripe_url` post its events to the API's webhook."""
        register_webhook(
            stripe_url, self.api + WEBHOOK_PATH, self.settings.stripe_webhook_secret or ""
        )

    def register_customers(self, count: int) -> None:
        for n in range(count):
            email = f"bench-{uuid.uuid4().hex[:8]}-{n}@example.com"
            body = {"email": email, "name": f"Bench {n}", "password": PASSWORD}
            found = http_json("POST", f"{self.api}/api/customers", body)
            self.customers.append(Customer(found["customer_id"], found["token"]))

    def start_workers(
        self, count: int, label: str = "worker", payments: int = PAYMENT_WORKERS, **extra: str
    ) -> None:
        """`count` more `rq worker` processes, and RQ's cron (the periodic sweep) and
        `payments` payments workers (as `shop run`) with the first ones, as a deployment
        runs them. Their logs are `<label>-<n>.log`."""
        env = self.env(LOG_LEVEL="WARNING", **extra)
        if self.cron is None or self.cron.poll() is not None:
            self.cron = self.processes.cron(f"{label}-cron", env)
            if not self.payments_workers:
                self.start_payments_workers(payments, f"{label}-payments", wait=False, **extra)
        for _ in range(count):
            self.workers.append(self.processes.worker(f"{label}-{len(self.workers)}", env))
        self._wait_registered()

    def start_payments_workers(
        self, count: int, label: str = "payments", *, wait: bool = True, **extra: str
    ) -> None:
        """`count` more `rq worker` processes of the shop-payments queue (they call the
        payment provider: STRIPE_API_BASE, which `extra` may override)."""
        env = self.env(LOG_LEVEL="WARNING", **extra)
        for _ in range(count):
            name = f"{label}-{len(self.payments_workers)}"
            self.payments_workers.append(self.processes.payments_worker(name, env))
        if wait:
            self._wait_registered()

    def stop_payments_workers(self) -> None:
        for worker in self.payments_workers:
            self.processes.stop(worker, timeout=2)
        self.payments_workers.clear()
        self._forget_dead_workers()

    def _wait_registered(self) -> None:
        every = self.workers + self.payments_workers
        redis = Redis.from_url(self.settings.require()[1])
        deadline = time.monotonic() + 60
        try:
            while len(Worker.all(connection=redis)) < len(every):
                if any(worker.poll() is not None for worker in every):
                    raise RuntimeError("an rq worker exited while starting; see its log")
                if time.monotonic() > deadline:
                    raise RuntimeError("the rq workers did not register within 60 s")
                time.sleep(0.1)
        finally:
            redis.close()

    def cpu_meter(self) -> CpuMeter:
        """Measures the API, the workers and this shop's PostgreSQL backends."""
        database = make_url(self.settings.require()[0]).database or ""
        roots: dict[str, list[int]] = {
            "api": [self.api_process.pid] if self.api_process else [],
            "workers": [w.pid for w in self.workers] + ([self.cron.pid] if self.cron else []),
            "payments_workers": [w.pid for w in self.payments_workers],
        }
        return CpuMeter(roots, database, libpq(self.settings.require()[0]))

    def server_cpu_meter(self, server: str) -> CpuMeter:
        """Measures one HTTP server ("api" or "baseline") and this shop's PostgreSQL
        backends."""
        process = self.api_process if server == "api" else self.baseline_process
        database = make_url(self.settings.require()[0]).database or ""
        return CpuMeter({server: [process.pid]}, database, libpq(self.settings.require()[0]))

    def stop_workers(self) -> None:
        # A worker finishes its job before a warm shutdown (up to 30 s): killing one is
        # safe by design (exactly-once in effect), and the bench has no time to wait.
        for worker in self.workers + self.payments_workers:
            self.processes.stop(worker, timeout=2)
        self.workers.clear()
        self.payments_workers.clear()
        if self.cron is not None:
            self.processes.stop(self.cron, timeout=2)
            self.cron = None
        self._forget_dead_workers()

    def _forget_dead_workers(self) -> None:
        redis = Redis.from_url(self.settings.require()[1])
        alive = {w.pid for w in self.workers + self.payments_workers if w.poll() is None}
        for worker in Worker.all(connection=redis):  # a SIGKILLed one stays registered
            if worker.pid not in alive:
                worker.register_death()  # type: ignore[no-untyped-call]
        redis.close()

    def wait_idle(self, timeout: float = 120) -> float:
        """Wait until the API answers /healthz promptly again: an overloaded server keeps
        working through its queued connections after the load generator gave up, and
        that must not spill into the next measurement. Returns the seconds waited."""
        began = time.monotonic()
        prompt = 0
        while prompt < 3 and time.monotonic() - began < timeout:
            asked = time.monotonic()
            try:
                http_json("GET", f"{self.api}/healthz")
            except OSError:
                prompt = 0
                continue
            prompt = prompt + 1 if time.monotonic() - asked < 0.05 else 0
            time.sleep(0.05)
        return time.monotonic() - began

    def place_orders(self, per_customer: int) -> Checkpoint:
        """Place orders through the API, one after another; the last consistency token."""
        last = Checkpoint()
        for customer in self.customers:
            for _ in range(per_customer):
                found = http_json(
                    "POST", f"{self.api}/api/orders", order_body(), headers=customer.headers
                )
                last = max(last, Checkpoint.parse(found["consistency_token"]))
        return last

    def read_models_reached(self, token: Checkpoint, timeout: float) -> bool:
        """Wait until order_list and order_detail have applied `token`."""
        side = self.application.read_side
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reached = True
            for name in ("order_list", "order_detail"):
                subscriber = side.projection(name).subscriber(side.generations(name).active)
                with self.application.engine.connect() as conn:
                    reached = reached and subscriber.checkpoint(conn) >= token
            if reached:
                return True
            time.sleep(0.2)
        return False

    def head(self) -> Checkpoint:
        with self.application.engine.connect() as conn, conn.begin():
            return self.application.store.head(conn)[0]

    def lagging(self) -> dict[str, int]:
        """Subscriptions (saga and async read models) still behind the log head."""
        subscribers: list[Any] = [self.application.saga]
        for name, projection in self.application.read_side.projections.items():
            if projection.mode == "async":
                subscribers += self.application.read_side.subscribers(name)
        behind = {}
        for status in self.application.runner.status(subscribers):
            if status.lag_events:
                behind[status.name] = status.lag_events
        return behind

    def wait_caught_up(self, timeout: float) -> dict[str, int]:
        """Wait until every subscription reached the head; returns what still lags."""
        deadline = time.monotonic() + timeout
        behind = self.lagging()
        while behind and time.monotonic() < deadline:
            time.sleep(0.5)
            behind = self.lagging()
        return behind

    def subscriptions(self) -> dict[str, Any]:
        """The saga's and every async read model's active subscriber, by name."""
        found: dict[str, Any] = {self.application.saga.name: self.application.saga}
        side = self.application.read_side
        for name, projection in side.projections.items():
            if projection.mode == "async":
                subscriber = projection.subscriber(side.generations(name).active)
                found[subscriber.name] = subscriber
        return found

    def subscription_names(self) -> list[str]:
        """The saga and every async read model, as catch-up jobs name them."""
        side = self.application.read_side
        names = [name for name, p in side.projections.items() if p.mode == "async"]
        return [self.application.saga.name, *names]

    def partition_counts(self) -> dict[str, int]:
        """Each subscription's partition count, as its lease rows record it."""
        with self.application.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT name, max(partitions) FROM subscription_partitions GROUP BY name")
            ).all()
        return {str(name): int(count) for name, count in rows}

    def checkpoint(self, subscriber: Any, partition: int) -> Checkpoint:
        """A partition's checkpoint of a subscriber (saga or read model; see
        `subscriptions`)."""
        with self.application.engine.connect() as conn:
            found: Checkpoint = subscriber.checkpoint(conn, partition)
            conn.rollback()
        return found

    def backlog(self, checkpoint: Checkpoint, partition: int, partitions: int) -> int:
        """Events after `checkpoint` in the slots of `partition` of `partitions`."""
        with self.application.engine.connect() as conn, conn.begin():
            slots = slots_of(partition, partitions)
            return self.application.store.backlog(conn, checkpoint, slots)[0]

    def live_leases(self) -> list[tuple[str, int, str]]:
        """(subscription, partition, holder 'host:pid') of every lease not yet run out."""
        with self.application.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT name, partition, holder FROM subscription_partitions"
                    " WHERE holder IS NOT NULL AND expires_at > clock_timestamp()"
                    " ORDER BY name, partition"
                )
            ).all()
        return [(str(name), int(partition), str(holder)) for name, partition, holder in rows]

    def count_events(self) -> int:
        with self.application.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())

    def close(self) -> None:
        self.application.close()
