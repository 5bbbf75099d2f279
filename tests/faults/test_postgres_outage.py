"""Scenario 4: PostgreSQL crashes (`pg_ctl stop -m immediate`) in the middle of a burst of
orders. Every command answers a prompt 503 problem+json while it is down; nothing is
half-written; once it is back the service recovers by itself, and a client retrying
with its Idempotency-Key gets exactly one order per key.

This test runs its OWN PostgreSQL server (pgserver, in a temporary directory) and never
stops the machine's shared one.
"""

from __future__ import annotations

import logging
import random
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import text

from config.bootstrap import Application, bootstrap
from config.database import migrate
from config.settings import Settings
from tests.faults.support import (
    assert_read_models_equal_rebuild,
    assert_sagas_exactly_once,
    settled,
    start_api,
)
from tests.support.api_client import ApiClient, Reply
from tests.support.polling import eventually
from tests.support.processes import Processes, wait_for_workers
from tests.support.shop import PASSWORD

PROMPT = 5.0  # seconds: the bound on any answer while PostgreSQL is down
OUTAGE_SECONDS = 4
CLIENTS = 4


class PrivatePostgres:
    """A pgserver-managed PostgreSQL in a temporary directory, stopped and started with
    pg_ctl through pgserver's handle."""

    def __init__(self, pgdata: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            from pgserver.postgres_server import PostgresServer
        # pgserver logs from its exit hook, after pytest has closed the stream.
        logging.getLogger("pgserver").setLevel(logging.WARNING)

        pgdata.mkdir()
        self.pgdata = pgdata
        self.server: Any = PostgresServer(pgdata, cleanup_mode="stop")
        socket_dir = self.server.get_postmaster_info().socket_dir
        self.url = f"postgresql://postgres@/postgres?host={quote(str(socket_dir), safe='/')}"

    def crash(self) -> None:
        """`pg_ctl stop -m immediate`: every backend dies at once, mid-transaction."""
        from pgserver._commands import POSTGRES_BIN_PATH

        subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-w",
                "-m",
                "immediate",
                "stop",
            ],
            check=True,
            user=self.server.system_user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )

    def start(self) -> None:
        with self.server._lock:
            self.server.ensure_postgres_running()

    def close(self) -> None:
        self.server.cleanup()


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(tmp_path / "pg")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def own(settings: Settings, postgres: PrivatePostgres) -> Iterator[Application]:
    """The system wired to our own PostgreSQL server and the session's Redis db."""
    migrate(postgres.url)
    built = bootstrap(replace(settings, database_url=postgres.url))
    try:
        yield built
    finally:
        built.close()


@dataclass
class Attempt:
    key: str
    customer: int
    lines: dict[str, int]
    reply: Reply | None = None
    error: str | None = None
    at: float = 0.0


def test_commands_fail_fast_with_503_while_postgres_is_down_and_nothing_is_half_written(
    own: Application,
    postgres: PrivatePostgres,
    processes: Processes,
    figures: dict[str, Any],
) -> None:
    api, _, env = start_api(processes, own.settings, SWEEP_INTERVAL="1", PAYMENT_TIMEOUT="5")
    api.add_product("MUG-1", amount=1250, stock=100_000)
    customers = [api.register(f"pg{n}@example.com").headers for n in range(CLIENTS)]
    worker = processes.worker(env)
    workers = [worker, *processes.payments_workers]
    wait_for_workers(own.settings.require()[1], workers)
    first = api.place(customers[0], {"MUG-1": 1})
    assert first.status == 202
    settled(own, timeout=30)

    attempts: list[Attempt] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(index: int) -> None:
        rng = random.Random(40 + index)
        n = 0
        while not stop.is_set():
            n += 1
            attempt = Attempt(f"burst-{index}-{n}", index, {"MUG-1": rng.randint(1, 3)})
            attempt.at = time.monotonic()
            try:
                attempt.reply = api.place(
                    customers[index], attempt.lines, key=attempt.key, timeout=30
                )
            except OSError as error:  # the connection itself failed: a client would retry
                attempt.error = repr(error)
            with lock:
                attempts.append(attempt)
            time.sleep(0.1)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)
        crashed = time.monotonic()
        postgres.crash()
        time.sleep(0.5)
        others = {
            "register": api(
                "POST",
                "/api/customers",
                {"email": "late@example.com", "name": "L", "password": PASSWORD},
            ),
            "cancel": api(
                "POST",
                f"/api/orders/{first.body['order_id']}/cancel",
                {"reason": "x"},
                customers[0],
            ),
            "ship": api(
                "POST",
                f"/admin/api/orders/{first.body['order_id']}/ship",
                {"tracking_number": "T-1"},
                api.admin,
            ),
            "restock": api("POST", "/admin/api/products/MUG-1/restock", {"quantity": 5}, api.admin),
            "order detail": api("GET", f"/api/orders/{first.body['order_id']}", None, customers[0]),
            "readyz": api("GET", "/readyz"),
        }
        time.sleep(OUTAGE_SECONDS)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    postgres.start()
    back = time.monotonic()
    recovered = _first_success(api, customers[2])
    recovery = recovered - back

    during = [a for a in attempts if a.at > crashed + 0.3 and a.at < back - 0.1]
    assert len(during) >= 20, f"only {len(during)} orders were tried while PostgreSQL was down"
    for attempt in during:
        assert attempt.reply is not None, attempt.error
        _assert_unavailable(attempt.reply)
    for name, reply in others.items():
        if name == "readyz":
            assert reply.status == 503 and reply.body["checks"]["postgres"].startswith("unreach")
            continue
        _assert_unavailable(reply, name)
    slowest = max(a.reply.seconds for a in attempts if a.reply is not None)
    assert slowest < PROMPT, f"an order took {slowest:.1f} s to answer"

    # Every key a client did not see accepted is retried; each key is one order.
    unanswered = [a for a in attempts if a.reply is None or a.reply.status != 202]
    for attempt in unanswered:
        retry = api.place(customers[attempt.customer], attempt.lines, key=attempt.key)
        assert retry.status == 202, (attempt.key, retry.status, retry.body)
        attempt.reply = retry
    order_ids = {a.key: a.reply.body["order_id"] for a in attempts if a.reply is not None}
    assert len(set(order_ids.values())) == len(attempts)
    with own.engine.connect() as conn:
        placed = (
            conn.execute(text("SELECT data ->> 'order_id' FROM events WHERE type = 'OrderPlaced'"))
            .scalars()
            .all()
        )
    assert sorted(placed) == sorted(
        {first.body["order_id"], recovered_order[0], *order_ids.values()}
    )

    catch_up = settled(own, timeout=60)
    audit = assert_sagas_exactly_once(own)
    assert_read_models_equal_rebuild(own)
    exited = [process.tail(1500) for process in workers if not process.alive]
    assert not exited, "an `rq worker` exited while PostgreSQL was down:\n" + "\n".join(exited)
    figures.update(
        orders_tried=len(attempts),
        answered_503_while_down=sum(1 for a in during),
        other_commands_503=sorted(name for name in others if name != "readyz"),
        slowest_answer_seconds=round(slowest, 3),
        bound_seconds=PROMPT,
        retried_keys=len(unanswered),
        seconds_to_first_202_after_restart=round(recovery, 2),
        seconds_to_settle_after_recovery=round(catch_up, 1),
        orders=audit.orders,
    )


recovered_order: list[str] = []


def _first_success(api: ApiClient, headers: dict[str, str]) -> float:
    def accepted() -> float:
        reply = api.place(headers, {"MUG-1": 1}, key="after-restart", timeout=10)
        assert reply.status == 202, (reply.status, reply.body)
        recovered_order[:] = [reply.body["order_id"]]
        return time.monotonic()

    return eventually(accepted, timeout=30, interval=0.2)


def _assert_unavailable(reply: Reply, what: str = "order") -> None:
    assert reply.status == 503, (what, reply.status, reply.body)
    assert reply.content_type.startswith("application/problem+json"), (what, reply.content_type)
    assert reply.body["status"] == 503 and reply.body["title"] == "Service Unavailable"
    assert reply.headers.get("Retry-After"), what
    assert reply.seconds < PROMPT, (what, reply.seconds)
