"""Scenario 5: many concurrent HTTP clients order a SKU that has little stock. Stock on
hand never goes below zero at any point of the log, what is sold is exactly what
confirmed orders hold, and every order ends confirmed or cancelled."""

from __future__ import annotations

import random
import statistics
import threading
from typing import Any

from config.bootstrap import Application
from config.settings import Settings
from tests.faults.support import (
    assert_read_models_equal_rebuild,
    assert_sagas_exactly_once,
    assert_stock_consistent,
    final_statuses,
    run_threads,
    settled,
    start_api,
)
from tests.support.event_log import whole_log
from tests.support.processes import Processes, wait_for_workers

CLIENTS = 32
ORDERS_PER_CLIENT = 3
STOCK = {"SCARCE-1": 30, "MUG-1": 10_000}


def test_concurrent_clients_never_reserve_more_than_is_in_stock(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    api, _, env = start_api(processes, settings, SWEEP_INTERVAL="1", PAYMENT_TIMEOUT="10")
    for sku, stock in STOCK.items():
        api.add_product(sku, amount=2500, stock=stock)
    workers = [processes.worker(env) for _ in range(2)]
    wait_for_workers(settings.require()[1], workers)
    customers = [api.register(f"rush{n}@example.com").headers for n in range(CLIENTS)]
    latencies: list[float] = []
    wanted: dict[str, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS)

    def client(index: int) -> None:
        rng = random.Random(500 + index)
        barrier.wait(timeout=30)  # everyone at once
        for _ in range(ORDERS_PER_CLIENT):
            lines = {"SCARCE-1": rng.randint(1, 2)}
            if rng.random() < 0.3:
                lines["MUG-1"] = 1
            reply = api.place(customers[index], lines)
            assert reply.status == 202, (reply.status, reply.body)
            with lock:
                latencies.append(reply.seconds)
                wanted[reply.body["order_id"]] = lines["SCARCE-1"]

    run_threads(CLIENTS, client)
    seconds = settled(application, timeout=90)

    statuses = final_statuses(whole_log(application))
    assert set(statuses) == set(wanted)
    assert set(statuses.values()) == {"confirmed", "cancelled"}
    sold = sum(wanted[order] for order, status in statuses.items() if status == "confirmed")
    assert sold <= STOCK["SCARCE-1"]
    assert STOCK["SCARCE-1"] - sold <= 1, "orders were refused while stock was left for them"
    assert_stock_consistent(application, STOCK)
    audit = assert_sagas_exactly_once(application)
    assert_read_models_equal_rebuild(application)
    ordered = sorted(latencies)
    figures.update(
        clients=CLIENTS,
        orders=len(wanted),
        units_wanted=sum(wanted.values()),
        stock=STOCK["SCARCE-1"],
        units_sold=sold,
        confirmed=audit.confirmed,
        cancelled=audit.cancelled,
        placement_p50_seconds=round(statistics.median(ordered), 3),
        placement_max_seconds=round(ordered[-1], 3),
        seconds_to_settle=round(seconds, 1),
    )
