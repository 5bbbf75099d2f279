"""Scenario 1: workers SIGKILLed at random moments while thousands of events are being
projected and the saga is working; restarted each time. Afterwards every read model
equals a fresh rebuild and every saga ended exactly once."""

from __future__ import annotations

import random
import signal
import threading
import time
from typing import Any

from config.bootstrap import Application
from config.settings import Settings
from tests.faults.support import (
    assert_read_models_equal_rebuild,
    assert_sagas_exactly_once,
    assert_stock_consistent,
    heal_by_hand,
    run_threads,
    settled_or_error,
    start_api,
)
from tests.support.api_client import ApiClient
from tests.support.event_log import event_count
from tests.support.payments import (
    AUTHENTICATION_REQUIRED,
    DECLINED,
    INSUFFICIENT_FUNDS,
    SUCCEEDS,
    UNKNOWN_METHOD,
)
from tests.support.processes import Process, Processes, wait_for_workers

SEEDS = (1101, 2202, 3303)
KILLS_PER_SEED = 8
ORDERS_PER_SEED = 180
CLIENTS = 4
SETTLE_SECONDS = 90
STOCK = {"MUG-1": 100_000, "TEE-1": 100_000, "CAP-1": 100_000, "RARE-1": 40}
PRICES = {"MUG-1": 1250, "TEE-1": 1999, "CAP-1": 899, "RARE-1": 9900}
# Most succeed; the rest are declined, fail before any charge (no such payment method), or
# wait on 3-D Secure that nobody completes until the payment deadline cancels the order.
TOKENS = [SUCCEEDS] * 14 + [DECLINED, INSUFFICIENT_FUNDS, UNKNOWN_METHOD, AUTHENTICATION_REQUIRED]


def _place_orders(api: ApiClient, customers: list[dict[str, str]], seed: int) -> list[str]:
    """Place ORDERS_PER_SEED orders from CLIENTS threads; a few get cancelled at once."""
    placed: list[str] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        rng = random.Random(seed * 100 + index)
        for _ in range(ORDERS_PER_SEED // CLIENTS):
            headers = rng.choice(customers)
            skus = rng.sample(["MUG-1", "TEE-1", "CAP-1", "RARE-1"], rng.randint(1, 2))
            lines = {sku: rng.randint(1, 3) for sku in skus}
            reply = api.place(headers, lines, rng.choice(TOKENS))
            assert reply.status == 202, (reply.status, reply.body)
            order_id = reply.body["order_id"]
            with lock:
                placed.append(order_id)
            if rng.random() < 0.05:
                cancel = api(
                    "POST",
                    f"/api/orders/{order_id}/cancel",
                    {"reason": "changed my mind"},
                    headers,
                )
                assert cancel.status in (202, 409), (cancel.status, cancel.body)

    run_threads(CLIENTS, client)
    return placed


def test_workers_killed_at_random_lose_nothing_and_duplicate_nothing(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    api, _, env = start_api(processes, settings, SWEEP_INTERVAL="1", PAYMENT_TIMEOUT="3")
    for sku, stock in STOCK.items():
        api.add_product(sku, amount=PRICES[sku], stock=stock)
    customers = [api.register(f"crash{n}@example.com").headers for n in range(6)]
    workers: list[Process] = [processes.worker(env) for _ in range(2)]
    wait_for_workers(settings.require()[1], workers)

    kills = 0
    started = time.monotonic()
    for seed in SEEDS:
        rng = random.Random(seed)
        done = threading.Event()

        def place(seed: int = seed, done: threading.Event = done) -> None:
            _place_orders(api, customers, seed)
            done.set()

        placing = threading.Thread(target=place, daemon=True)
        placing.start()
        for _ in range(KILLS_PER_SEED):
            time.sleep(rng.uniform(0.3, 1.5))
            victim = rng.randrange(len(workers))
            processes.kill(workers[victim], signal.SIGKILL)
            kills += 1
            if rng.random() < 0.15:  # now and then both die at once
                other = 1 - victim
                processes.kill(workers[other], signal.SIGKILL)
                kills += 1
                workers[other] = processes.worker(env)
            workers[victim] = processes.worker(env)
        placing.join(timeout=300)
        assert done.is_set(), "placing orders failed:\n" + processes.tails()
    killing = time.monotonic() - started

    # With the sweep working, the worst case is RQ's scheduler lock of a killed worker
    # running out (interval + 60 s) before a live worker takes the scheduler over.
    recovery, stuck = settled_or_error(application, timeout=SETTLE_SECONDS)
    if stuck:
        heal_by_hand(application)  # then check everything else before failing
    audit = assert_sagas_exactly_once(application)
    sizes = assert_read_models_equal_rebuild(application)
    assert_stock_consistent(application, STOCK)

    assert kills >= 20
    assert audit.orders == len(SEEDS) * ORDERS_PER_SEED
    assert audit.confirmed and audit.cancelled
    figures.update(
        kills=kills,
        seeds=len(SEEDS),
        orders=audit.orders,
        confirmed=audit.confirmed,
        cancelled=audit.cancelled,
        refunds=audit.refunds,
        events=event_count(application),
        seconds_under_fire=round(killing, 1),
        seconds_to_settle_after_last_kill=round(recovery, 1),
        read_model_sizes=sizes,
        healed_itself=stuck is None,
    )
    assert stuck is None, (
        f"the system did not heal itself within {SETTLE_SECONDS} s of the last kill (it did"
        f" once swept by hand, and then lost and duplicated nothing): {stuck}"
    )
