"""One hot SKU: concurrent ReserveInventory commands through the command bus.

Each client is a process with its own application (as API or worker processes
are), reserving one unit per command for a new order. Run twice: with plenty of
stock for throughput, then with scarce stock to count oversells.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from multiprocessing.connection import Connection as Pipe
from typing import Any

from sqlalchemy import make_url, text

from bench.cpu import CpuMeter, cores
from bench.results import Metric
from bench.stats import percentile
from config.bootstrap import bootstrap
from config.settings import Settings
from inventory.commands import ReservationLine, ReserveInventory
from kernel.messages import Metadata


def _client(settings: Settings, sku: str, pipe: Pipe) -> None:
    application = bootstrap(settings)
    pipe.send("ready")
    start_at, end_at, limit = pipe.recv()
    while time.monotonic() < start_at:
        time.sleep(0.001)
    done, failed, latencies = 0, 0, []
    while time.monotonic() < end_at and done + failed < limit:
        began = time.monotonic()
        command = ReserveInventory(str(uuid.uuid4()), (ReservationLine(sku, 1),))
        result = application.bus.dispatch(command, Metadata(actor="bench"))
        latencies.append(time.monotonic() - began)
        if result.ok:
            done += 1
        else:
            failed += 1
    pipe.send((done, failed, latencies))
    pipe.recv()  # keep the connections (their backends' CPU counts) until measured
    application.close()


def _run(
    settings: Settings, sku: str, clients: int, seconds: float, limit: int
) -> tuple[int, int, list[float], float, dict[str, float]]:
    context = multiprocessing.get_context("fork")
    pipes, children = [], []
    for _ in range(clients):
        parent, child = context.Pipe()
        process = context.Process(target=_client, args=(settings, sku, child), daemon=True)
        process.start()
        pipes.append(parent)
        children.append(process)
    for pipe in pipes:
        pipe.recv()
    database = make_url(settings.require()[0]).database or ""
    meter = CpuMeter({"clients": [process.pid for process in children if process.pid]}, database)
    meter.start()
    start_at = time.monotonic() + 0.3
    for pipe in pipes:
        pipe.send((start_at, start_at + seconds, limit))
    done = failed = 0
    latencies: list[float] = []
    for pipe in pipes:
        d, f, lat = pipe.recv()
        done, failed, latencies = done + d, failed + f, latencies + lat
    elapsed = time.monotonic() - start_at
    used = meter.stop()
    for pipe in pipes:
        pipe.send(None)
    for process in children:
        process.join(timeout=30)
    return done, failed, latencies, min(elapsed, seconds), used


def _reserved(settings: Settings, sku: str) -> tuple[int, int, int]:
    """(units reserved per the SKU's stream, InventoryReserved naming it, last available)."""
    application = bootstrap(settings)
    try:
        with application.engine.connect() as conn:
            units = conn.execute(
                text(
                    "SELECT coalesce(sum((data->>'quantity')::int), 0) FROM events"
                    " WHERE stream_id = :s AND type = 'StockReserved'"
                ),
                {"s": f"stock_item-{sku}"},
            ).scalar_one()
            orders = conn.execute(
                text(
                    "SELECT count(*) FROM events WHERE type = 'InventoryReserved'"
                    " AND data->'lines' @> CAST(:line AS jsonb)"
                ),
                {"line": f'[{{"sku": "{sku}"}}]'},
            ).scalar_one()
            available = conn.execute(
                text(
                    "SELECT (data->>'available')::int FROM events WHERE stream_id = :s"
                    " AND type = 'StockReserved' ORDER BY version DESC LIMIT 1"
                ),
                {"s": f"stock_item-{sku}"},
            ).scalar()
        return int(units), int(orders), int(available if available is not None else -1)
    finally:
        application.close()


def hot_sku(
    settings: Settings, add_product: object, clients: int, seconds: float, scarce: int
) -> Metric:
    from bench.shop import Shop

    assert isinstance(add_product, Shop)
    shop = add_product
    plenty, few = f"HOT-{uuid.uuid4().hex[:6]}", f"SCARCE-{uuid.uuid4().hex[:6]}"
    shop.add_product(plenty, "Hot item", 999, 10**9)
    shop.add_product(few, "Scarce item", 999, scarce)
    shop.application.engine.dispose()  # no pooled connection crosses the fork
    done, failed, latencies, elapsed, used = _run(settings, plenty, clients, seconds, 10**9)
    attempts = scarce * 2 // clients + 1
    s_done, s_failed, _, _, _ = _run(settings, few, clients, 120, attempts)
    units, orders, available = _reserved(settings, few)
    oversold = max(0, units - scarce) + (1 if available < 0 else 0)
    rate = done / elapsed if elapsed else 0.0
    return Metric(
        f"hot SKU: concurrent reservations of one SKU, {clients} clients",
        rate,
        "reservations/s",
        ">= 500 reservations/s, 0 oversold",
        rate >= 500 and oversold == 0 and failed == 0,
        None,
        None,
        {"clients": clients, "seconds": seconds, "scarce_stock": scarce, "quantity": 1},
        {
            "reservations": done,
            "refused_or_conflict": failed,
            "p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(latencies, 99) * 1000, 2),
            "cpu": _cpu_budget(used, done + failed),
            "scarce_run": {
                "attempts": s_done + s_failed,
                "units_reserved": units,
                "orders_reserved": orders,
                "stock": scarce,
                "last_available": available,
                "oversold": oversold,
            },
        },
    )


def _cpu_budget(used: dict[str, float], attempts: int) -> dict[str, Any]:
    """CPU per reservation (the clients' command bus and PostgreSQL's backends), and
    the cores 500 reservations/s would take at that cost."""
    total_ms = sum(used.values()) * 1000 / attempts if attempts else float("nan")
    return {
        "cpu_s": used,
        "cpu_ms_per_reservation": round(total_ms, 3),
        "cores_needed_at_500_per_s": round(total_ms * 500 / 1000, 2),
        "cores": cores(),
    }
