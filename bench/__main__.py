"""`python -m bench [--quick] [--only PHASE,...]`: run the benchmarks, print a table,
write bench/results/latest.json (and quick.json or full.json beside it)."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import (
    abuse,
    api,
    appends,
    hotsku,
    load,
    partitioned,
    payments,
    projections,
    results,
    tracing,
)
from bench.env import Processes, Servers, bench_settings, new_name
from bench.results import Metric
from bench.shop import Shop

PHASES = (
    "appends",
    "hotsku",
    "get",
    "abuse",
    "idle",
    "saga",
    "freshness",
    "foreign",
    "frozen",
    "payments",
    "post",
    "tracing",
    "drain",
    "projections",
)
WITH_WORKERS = {"idle", "saga", "freshness", "foreign", "frozen", "payments"}


@dataclass(frozen=True)
class Sizes:
    append_writers: int = 16
    append_rounds: int = 5
    append_seconds: float = 5
    hot_clients: int = 16
    hot_seconds: float = 15
    scarce_stock: int = 500
    customers: int = 50
    idle_orders: int = 100
    saga_rate: float = 50
    saga_seconds: float = 60
    sustained_rate: float = 100
    sustained_seconds: float = 60
    fresh_rate: float = 50
    fresh_seconds: float = 60
    foreign_rate: float = 50
    foreign_seconds: float = 60
    frozen_rate: float = 50
    frozen_before: float = 10
    frozen_seconds: float = 45
    frozen_after: float = 20
    payments_rate: float = 20
    payments_seconds: float = 60
    payments_delay_ms: float = 500
    payments_workers: int = 16
    payments_rounds: int = 2
    payments_warmup: float = 60
    drain: float = 90
    drain_orders: int = 10_000
    drain_products: int = 40
    drain_give_up: float = 900
    get_rate: float = 500
    get_rounds: int = 4
    get_seconds: float = 6
    abuse_rounds: int = 2
    abuse_seconds: float = 8
    abuse_rate: float = 100
    post_rounds: int = 5
    post_seconds: float = 6
    post_concurrency: int = 8
    events: int = 1_000_000
    peer_events: int = 100_000
    recovery_trials: int = 3
    backlog: int = 60_000
    give_up: float = 120
    request_timeout: float = 30
    orders_per_customer: int = 3
    tracing_rounds: int = 5
    tracing_orders: int = 60


FULL = Sizes()
QUICK = Sizes(
    append_rounds=3,
    append_seconds=1,
    hot_seconds=2,
    scarce_stock=40,
    customers=20,
    idle_orders=30,
    saga_seconds=5,
    sustained_seconds=5,
    fresh_seconds=5,
    foreign_seconds=10,
    frozen_before=3,
    frozen_seconds=15,
    frozen_after=5,
    payments_seconds=10,
    payments_rounds=1,
    payments_warmup=0,
    drain=20,
    drain_orders=2_000,
    drain_give_up=180,
    get_rounds=1,
    get_seconds=2.5,
    abuse_rounds=1,
    abuse_seconds=3,
    post_rounds=2,
    post_seconds=2,
    events=8_000,
    peer_events=2_000,
    recovery_trials=2,
    backlog=5_000,
    give_up=20,
    request_timeout=5,
    orders_per_customer=2,
    tracing_rounds=3,
    tracing_orders=20,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, about 3 minutes")
    parser.add_argument("--only", default="", help=f"comma-separated phases of {PHASES}")
    parser.add_argument("--keep-logs", action="store_true", help="keep the process logs")
    parser.add_argument("--drain-products", type=int, help="products the drain's orders use")
    parser.add_argument("--events", type=int, help="events in the projection phase's log")
    parser.add_argument("--peer-events", type=int, help="order events the peer projects")
    parser.add_argument(
        "--payments-workers", type=int, help="payments workers of the payments phase (16)"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.events:
        sizes = dataclasses.replace(sizes, events=args.events)
    if args.drain_products:
        sizes = dataclasses.replace(sizes, drain_products=args.drain_products)
    if args.peer_events:
        sizes = dataclasses.replace(sizes, peer_events=args.peer_events)
    if args.payments_workers:
        sizes = dataclasses.replace(sizes, payments_workers=args.payments_workers)
    # Interrupted (Ctrl-C, or SIGTERM, also when started in the background): still stop
    # every process and drop every database the bench made.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    mode = "quick" if args.quick else "full"
    only = set(filter(None, args.only.split(","))) or set(PHASES)
    unknown = only - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")

    started = time.time()
    load.TIMEOUT = sizes.request_timeout
    servers = Servers.from_env()
    logs = Path(tempfile.mkdtemp(prefix="shop-bench-"))
    processes = Processes(logs)
    metrics: list[Metric] = []
    failures: list[str] = []
    postgres, redis_version = servers.versions()
    machine = results.machine_description(postgres, redis_version)
    name = new_name()
    partial = results.RESULTS / f"{mode}-partial.json"
    print(f"bench ({mode}): databases {name}*, logs in {logs}", flush=True)

    def phase(label: str, run: Callable[[], list[Metric]]) -> None:
        if label not in only:
            return
        began = time.monotonic()
        print(f"- {label} ...", flush=True)
        try:
            found = run()
        except Exception:
            failures.append(label)
            print(f"  {label} FAILED:\n{traceback.format_exc()}", flush=True)
            return
        metrics.extend(found)
        for metric in found:
            spread = ", ".join(
                f"{key[:-3]} {metric.details[key]:.4g}"
                for key in ("p50_ms", "p90_ms", "p99_ms")
                if isinstance(metric.details.get(key), (int, float))
            )
            print(
                f"  {metric.name}: {metric.value:.4g} {metric.unit}"
                + (f" ({spread} ms)" if spread else "")
                + ("" if metric.met else "  [goal missed]"),
                flush=True,
            )
        # What is measured so far survives an interrupted run.
        results.write(metrics, machine, f"{mode} (partial)", started, partial)
        print(f"  ({time.monotonic() - began:.0f} s)", flush=True)

    shop: Shop | None = None
    memory = partitioned.WorkerMemory(processes)
    memory.start()
    try:
        redis_url = servers.claim_redis()
        url = servers.create_database(name)
        # The payments workers of every phase pay through a local Stripe (localstripe).
        settings = bench_settings(url, redis_url, logs, servers.start_stripe(logs))

        def run_appends() -> list[Metric]:
            append_url = servers.create_database(name + "_append")
            es_url = servers.create_database(name + "_es", migrated=False)
            return appends.appends(
                append_url, es_url, sizes.append_writers, sizes.append_rounds, sizes.append_seconds
            )

        phase("appends", run_appends)
        shop = Shop.build(settings, processes)
        shop.seed_products()
        current = shop
        phase(
            "hotsku",
            lambda: [
                hotsku.hot_sku(
                    settings, current, sizes.hot_clients, sizes.hot_seconds, sizes.scarce_stock
                )
            ],
        )
        if only & ({"get", "abuse", "post"} | WITH_WORKERS):
            shop.start_api()
            shop.register_customers(sizes.customers)
            if "get" in only:
                # Every customer gets a few orders the read models show; then the GETs
                # run with the read models caught up and no worker busy.
                shop.start_workers(2)
                token = shop.place_orders(sizes.orders_per_customer)
                if not shop.read_models_reached(token, 120):
                    print("  the read models did not catch up before the GET phase", flush=True)
                shop.stop_workers()
                phase(
                    "get",
                    lambda: api.get_latency(
                        current,
                        api.orders_by_customer(current),
                        sizes.get_rounds,
                        sizes.get_seconds,
                        sizes.get_rate,
                    ),
                )
            phase(
                "abuse",
                lambda: abuse.capacity(
                    current, sizes.abuse_rounds, sizes.abuse_seconds, sizes.abuse_rate
                ),
            )
            if only & WITH_WORKERS:
                shop.start_workers(2)

                def settle(after: str) -> None:
                    # What one phase left behind must not spill into the next.
                    if after in only:
                        lagging = current.wait_caught_up(sizes.drain)
                        if lagging:
                            print(f"  still lagging after {after}: {lagging}", flush=True)

                phase("idle", lambda: partitioned.idle(current, sizes.idle_orders))
                phase(
                    "saga",
                    lambda: (
                        api.saga_latency(current, sizes.saga_rate, sizes.saga_seconds, sizes.drain)
                        + api.saga_latency(
                            current,
                            sizes.sustained_rate,
                            sizes.sustained_seconds,
                            sizes.drain,
                            sustained=True,
                        )
                    ),
                )
                settle("saga")
                phase(
                    "freshness",
                    lambda: api.freshness(
                        current, sizes.fresh_rate, sizes.fresh_seconds, sizes.drain
                    ),
                )
                settle("freshness")
                phase(
                    "foreign",
                    lambda: partitioned.foreign(
                        current,
                        servers,
                        name,
                        sizes.foreign_rate,
                        sizes.foreign_seconds,
                        sizes.drain,
                    ),
                )
                settle("foreign")
                phase(
                    "frozen",
                    lambda: partitioned.frozen(
                        current,
                        sizes.frozen_rate,
                        sizes.frozen_before,
                        sizes.frozen_seconds,
                        sizes.frozen_after,
                        sizes.drain,
                    ),
                )
                settle("frozen")
                phase(
                    "payments",
                    lambda: payments.payments(
                        current,
                        sizes.payments_rate,
                        sizes.payments_seconds,
                        sizes.payments_delay_ms,
                        sizes.payments_workers,
                        sizes.drain,
                        sizes.payments_rounds,
                        sizes.payments_warmup,
                    ),
                )
                shop.stop_workers()
            # Last: the orders it places are never fulfilled (no worker runs).
            phase(
                "post",
                lambda: api.post_throughput(
                    current, sizes.post_rounds, sizes.post_seconds, sizes.post_concurrency
                ),
            )
            processes.stop_all()
        phase(
            "tracing",
            lambda: tracing.tracing_cost(
                servers, name, redis_url, logs, sizes.tracing_rounds, sizes.tracing_orders
            ),
        )
        phase(
            "drain",
            lambda: partitioned.drain(
                servers,
                name,
                redis_url,
                processes,
                logs,
                sizes.drain_orders,
                sizes.drain_give_up,
                sizes.drain_products,
            ),
        )
        phase(
            "projections",
            lambda: projections.rebuilds(
                servers,
                name,
                redis_url,
                processes,
                logs,
                sizes.events,
                sizes.peer_events,
                sizes.recovery_trials,
                sizes.backlog,
                sizes.give_up,
            ),
        )
    finally:
        memory.stop()
        processes.stop_all()
        if shop is not None:
            shop.close()
        servers.drop_databases()
        servers.release_redis()
        servers.stop_stripe()

    found = memory.metric()
    if found is not None:
        metrics.append(found)
        print(f"  {found.name}: {found.value:.4g} {found.unit}", flush=True)
    out = results.RESULTS / "latest.json"
    results.write(metrics, machine, mode, started, out, sizes=dataclasses.asdict(sizes))
    shutil.copyfile(out, results.RESULTS / f"{mode}.json")
    partial.unlink(missing_ok=True)
    print()
    print(results.table(metrics))
    print(f"\n{mode} run: {time.time() - started:.0f} s; wrote {out}")
    if failures:
        print(f"phases that failed: {', '.join(failures)} (logs in {logs})")
        return 1
    if args.keep_logs:
        print(f"logs kept in {logs}")
    else:
        shutil.rmtree(logs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
