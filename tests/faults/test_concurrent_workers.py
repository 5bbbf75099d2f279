"""Scenario 2: three `rq worker` processes race for the same subscriptions while orders
pour in over HTTP; every event is applied once per read model, in log order."""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from typing import Any

from config.bootstrap import Application
from config.settings import Settings
from projections import order_detail
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
from tests.support.payments import AUTHENTICATION_REQUIRED, DECLINED, SUCCEEDS
from tests.support.processes import Processes, wait_for_workers
from tests.support.read_models import contents

WORKERS = 3
CLIENTS = 8
ORDERS_PER_CLIENT = 20
STOCK = {"MUG-1": 100_000, "TEE-1": 100_000, "RARE-1": 25}
TOKENS = [SUCCEEDS] * 8 + [DECLINED, AUTHENTICATION_REQUIRED]


def test_racing_workers_apply_every_event_once_in_log_order(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    api, _, env = start_api(processes, settings, SWEEP_INTERVAL="1", PAYMENT_TIMEOUT="10")
    for sku, stock in STOCK.items():
        api.add_product(sku, amount=1500, stock=stock)
    workers = [processes.worker(env) for _ in range(WORKERS)]
    wait_for_workers(settings.require()[1], workers)
    customers = [api.register(f"race{n}@example.com").headers for n in range(CLIENTS)]
    placed: list[tuple[str, dict[str, str]]] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        rng = random.Random(7000 + index)
        for _ in range(ORDERS_PER_CLIENT):
            lines = {rng.choice(list(STOCK)): rng.randint(1, 3)}
            reply = api.place(customers[index], lines, rng.choice(TOKENS))
            assert reply.status == 202, (reply.status, reply.body)
            with lock:
                placed.append((reply.body["order_id"], customers[index]))
            if rng.random() < 0.1:
                cancel = api(
                    "POST",
                    f"/api/orders/{reply.body['order_id']}/cancel",
                    {"reason": "too slow"},
                    customers[index],
                )
                assert cancel.status in (202, 409), (cancel.status, cancel.body)

    run_threads(CLIENTS, client)
    settled(application, timeout=90)
    confirmed = [o for o, s in final_statuses(whole_log(application)).items() if s == "confirmed"]
    for order_id in confirmed[::4]:  # ship some: the saga commits their reservations
        reply = api(
            "POST",
            f"/admin/api/orders/{order_id}/ship",
            {"tracking_number": f"T-{order_id[:8]}"},
            api.admin,
        )
        assert reply.status == 202, (reply.status, reply.body)
    seconds = settled(application, timeout=60)

    log = whole_log(application)
    about: dict[str, list[str]] = {}
    positions: dict[str, int] = {}
    for recorded in log:
        if order_detail.handlers.handles(recorded.type):
            about.setdefault(recorded.data["order_id"], []).append(recorded.type)
        if recorded.type == "OrderPlaced":
            positions[recorded.data["order_id"]] = recorded.position
    details = contents(application, "order_detail", 1)["order_details"]
    assert len(details) == len(placed) == CLIENTS * ORDERS_PER_CLIENT
    for row in details:  # each event once, in log order, per order
        timeline = [moment["event"] for moment in row["document"]["timeline"]]
        assert timeline == about[row["order_id"]], row["order_id"]

    listed = contents(application, "order_list", 1)
    newest_last = sorted(positions.items(), key=lambda item: item[1])
    assert listed["all"] == [(order_id, float(at)) for order_id, at in newest_last]
    statuses = final_statuses(log)
    shipped = {r.data["order_id"] for r in log if r.type == "OrderShipped"}
    for order_id, status in statuses.items():
        expected = "shipped" if order_id in shipped else status
        assert listed[f"order:{order_id}"]["status"] == expected, order_id

    counts = Counter(recorded.type for recorded in log)
    sales = contents(application, "sales_analytics", 1)
    assert sum(day["orders"] for day in sales["sales_daily"]) == counts["OrderConfirmed"]
    assert sum(day["cancellations"] for day in sales["sales_daily"]) == counts["OrderCancelled"]
    assert sum(day["refunds"] for day in sales["sales_daily"]) == counts["PaymentRefunded"]
    audit = assert_sagas_exactly_once(application)
    assert_read_models_equal_rebuild(application)
    assert_stock_consistent(application, STOCK)

    jobs = [_catch_up_jobs(worker.log.read_text()) for worker in workers]
    assert all(process.alive for process in workers), processes.tails()
    busy = [n for n in jobs if n]
    assert len(busy) >= 2, f"the workers did not share the work: {jobs}"
    figures.update(
        workers=WORKERS,
        orders=audit.orders,
        shipped=len(shipped),
        events=len(log),
        catch_up_jobs_per_worker=jobs,
        seconds_to_settle_after_shipping=round(seconds, 1),
    )


def _catch_up_jobs(log: str) -> int:
    return len(re.findall(r"Successfully completed config\.jobs\.(?:catch_up|sweep)", log))
