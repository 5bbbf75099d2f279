"""HTTP metrics: POST throughput, GET latency at a fixed rate, read-model freshness
and saga latency, each against the real gunicorn API (and workers where needed)."""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from redis import Redis

from bench import load
from bench.cpu import cores
from bench.env import libpq
from bench.results import Baseline, Metric
from bench.shop import Shop, order_body
from bench.stats import percentile
from kernel.event_store import Checkpoint
from projections.order_list import Keys, prefix


def _post_requests(shop: Shop, token: str = "tok_visa") -> list[dict[str, Any]]:
    return [
        {"method": "POST", "path": "/api/orders", "headers": c.headers, "body": order_body(token)}
        for c in shop.customers
    ]


def post_throughput(shop: Shop, rounds: int, seconds: float, concurrency: int) -> list[Metric]:
    """Closed-loop POST /api/orders against a minimal Flask POST, rounds interleaved."""
    target = _post_requests(shop)
    baseline = [{"method": "POST", "path": "/orders", "body": order_body()}]
    runs: dict[str, list[load.LoadResult]] = {"api": [], "baseline": []}
    cpu: dict[str, list[dict[str, float]]] = {"api": [], "baseline": []}
    for index in range(rounds):
        order = ("api", "baseline") if index % 2 == 0 else ("baseline", "api")
        for name in order:
            url, requests = (shop.api, target) if name == "api" else (shop.baseline, baseline)
            result, used = _metered(
                shop,
                name,
                load.spec(
                    url,
                    requests,
                    mode="closed",
                    duration=seconds,
                    concurrency=concurrency,
                    warmup=min(1.0, seconds / 4),
                ),
            )
            runs[name].append(result)
            cpu[name].append(used)
    api, base = _pooled(runs["api"]), _pooled(runs["baseline"])
    api["cpu"] = cpu_per_request(cpu["api"], runs["api"])
    base["cpu"] = cpu_per_request(cpu["baseline"], runs["baseline"])
    ratio = api["requests_per_s"] / base["requests_per_s"] if base["requests_per_s"] else math.nan
    parameters = {
        "rounds": rounds,
        "seconds_per_round": seconds,
        "concurrency": concurrency,
        "gunicorn": "2 sync workers (as `shop run`), no access log",
        "workers_running": False,
        "per_round_ratio": [
            round(a.rate / b.rate, 3) if b.rate else None
            for a, b in zip(runs["api"], runs["baseline"], strict=True)
        ],
    }
    return [
        Metric(
            "POST /api/orders throughput",
            api["requests_per_s"],
            "requests/s",
            ">= 0.35 x minimal Flask POST",
            ratio >= 0.35,
            Baseline("minimal Flask JSON POST", base["requests_per_s"]),
            ratio,
            parameters,
            {"api": api, "baseline": base},
        ),
        Metric(
            "POST /api/orders latency p50 (closed loop)",
            api["p50_ms"],
            "ms",
            "- (reported)",
            True,
            Baseline("minimal Flask JSON POST p50", base["p50_ms"]),
            base["p50_ms"] / api["p50_ms"] if api["p50_ms"] else None,
            parameters,
        ),
        Metric(
            "POST /api/orders latency p99 (closed loop)",
            api["p99_ms"],
            "ms",
            "- (reported)",
            True,
            Baseline("minimal Flask JSON POST p99", base["p99_ms"]),
            base["p99_ms"] / api["p99_ms"] if api["p99_ms"] else None,
            parameters,
        ),
    ]


def cpu_per_request(used: list[dict[str, float]], results: list[load.LoadResult]) -> dict[str, Any]:
    """CPU-milliseconds per request, per component, over all rounds (every request
    sent, warm-up included, as the CPU was spent on those too)."""
    requests = sum(result.sent for result in results)
    totals: dict[str, float] = {}
    for round_used in used:
        for name, seconds in round_used.items():
            totals[name] = totals.get(name, 0.0) + seconds
    per_request = {
        name: round(seconds * 1000 / requests, 3) if requests else None
        for name, seconds in totals.items()
    }
    total = sum(totals.values()) * 1000 / requests if requests else math.nan
    return {"cpu_ms_per_request": per_request, "cpu_ms_per_request_total": round(total, 3)}


def _metered(
    shop: Shop, server: str, load_spec: dict[str, Any]
) -> tuple[load.LoadResult, dict[str, float]]:
    """`_run_idle`, and the CPU `server` ("api" or "baseline") and PostgreSQL spent on it."""
    meter = shop.server_cpu_meter(server)
    meter.start()
    result = _run_idle(shop, load_spec)
    return result, meter.stop()


def _run_idle(shop: Shop, load_spec: dict[str, Any]) -> load.LoadResult:
    """Run a load, then wait until the API has worked off what it still had queued."""
    result = load.run(load_spec)
    shop.wait_idle()
    return result


def _pooled(results: list[load.LoadResult]) -> dict[str, Any]:
    latencies = [latency for result in results for latency in result.latencies()]
    ok = sum(len(result.ok) for result in results)
    seconds = sum(result.measured_s for result in results)
    return {
        "requests_per_s": round(ok / seconds, 1) if seconds else 0.0,
        "completed_per_s": round(min((r.completed_rate for r in results), default=0.0), 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "ok": ok,
        "errors": sum(result.errors for result in results),
        "loadgen_cpu_s": round(sum(result.cpu_s for result in results), 2),
    }


def get_latency(
    shop: Shop, order_ids: dict[str, list[str]], rounds: int, seconds: float, rate: float
) -> list[Metric]:
    """Open-loop GETs at a fixed rate: the two customer queries vs a constant GET."""
    customers = [c for c in shop.customers if order_ids.get(c.customer_id)]
    if not customers:
        raise RuntimeError("no customer has an order in the read models to GET")
    lists = [{"method": "GET", "path": "/api/orders", "headers": c.headers} for c in customers]
    details = [
        {"method": "GET", "path": f"/api/orders/{order_id}", "headers": c.headers}
        for c in customers
        for order_id in order_ids[c.customer_id][:5]
    ]
    targets: dict[str, tuple[str, list[dict[str, Any]]]] = {
        "baseline": (shop.baseline, [{"method": "GET", "path": "/ping"}]),
        "GET /api/orders": (shop.api, lists),
        "GET /api/orders/{id}": (shop.api, details),
    }
    runs: dict[str, list[load.LoadResult]] = {name: [] for name in targets}
    cpu: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    names = list(targets)
    for index in range(rounds):
        for name in names[index % 3 :] + names[: index % 3]:
            url, requests = targets[name]
            result, used = _metered(
                shop,
                "baseline" if name == "baseline" else "api",
                load.spec(
                    url,
                    requests,
                    mode="open",
                    rate=rate,
                    duration=seconds,
                    concurrency=256,
                    warmup=min(1.0, seconds / 4),
                ),
            )
            runs[name].append(result)
            cpu[name].append(used)
    pooled = {name: _pooled(results) for name, results in runs.items()}
    for name, rounds_used in cpu.items():
        pooled[name]["cpu"] = cpu_per_request(rounds_used, runs[name])
    # What each endpoint can serve at all (closed loop), to read the open-loop figures by.
    for name in names:
        url, requests = targets[name]
        probe = _run_idle(
            shop,
            load.spec(url, requests, mode="closed", duration=max(1.0, seconds / 3), concurrency=8),
        )
        pooled[name]["capacity_rps_closed_loop"] = round(probe.rate, 1)
    base = pooled["baseline"]
    metrics = []
    for name in ("GET /api/orders", "GET /api/orders/{id}"):
        found = pooled[name]
        ratio = base["p99_ms"] / found["p99_ms"] if found["p99_ms"] else math.nan
        metrics.append(
            Metric(
                f"{name} p99 at {rate:.0f} requests/s",
                found["p99_ms"],
                "ms",
                "p99 <= 2 x baseline p99",
                found["p99_ms"] <= 2 * base["p99_ms"] and found["errors"] == 0,
                Baseline("minimal Flask GET p99", base["p99_ms"]),
                ratio,
                {
                    "rate": rate,
                    "rounds": rounds,
                    "seconds_per_round": seconds,
                    "open_loop": True,
                    "ratio_note": "baseline p99 / this p99 (goal: >= 0.5)",
                    "baseline_kept_up": base["completed_per_s"] >= 0.9 * rate,
                    "this_kept_up": found["completed_per_s"] >= 0.9 * rate,
                },
                {"this": found, "baseline": base},
            )
        )
    return metrics


@dataclass
class Timeline:
    """When a watcher saw each checkpoint (monotonic time, checkpoint), in order."""

    times: list[float]
    checkpoints: list[Checkpoint]

    def first_reaching(self, wanted: Checkpoint) -> float | None:
        index = bisect.bisect_left(self.checkpoints, wanted)
        return self.times[index] if index < len(self.checkpoints) else None


class Watcher(threading.Thread):
    """Polls something every `interval` seconds until stopped."""

    def __init__(self, poll: Callable[[], None], interval: float) -> None:
        super().__init__(daemon=True)
        self.poll = poll
        self.interval = interval
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.poll()
                time.sleep(self.interval)
        except BaseException as error:  # reported by the caller
            self.error = error

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)
        if self.error:
            raise self.error


class CheckpointWatcher:
    """Records the order_list (Redis) and order_detail (PostgreSQL) checkpoints over time."""

    def __init__(self, shop: Shop, interval: float = 0.005) -> None:
        side = shop.application.read_side
        self.list_key = Keys(prefix(side.generations("order_list").active)).checkpoint()
        self.detail_name = (
            side.projection("order_detail").subscriber(side.generations("order_detail").active).name
        )
        self.redis = Redis.from_url(shop.settings.require()[1])
        self.pg = psycopg.connect(libpq(shop.settings.require()[0]), autocommit=True)
        self.timelines = {"order_list": Timeline([], []), "order_detail": Timeline([], [])}
        self.thread = Watcher(self.poll, interval)

    def poll(self) -> None:
        raw = self.redis.get(self.list_key)
        now = time.monotonic()
        if raw:
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            self._add("order_list", now, Checkpoint.parse(text))
        row = self.pg.execute(
            "SELECT transaction_id, position FROM subscriptions WHERE name = %s",
            (self.detail_name,),
        ).fetchone()
        now = time.monotonic()
        if row:
            self._add("order_detail", now, Checkpoint(row[0], row[1]))

    def _add(self, name: str, at: float, checkpoint: Checkpoint) -> None:
        line = self.timelines[name]
        if not line.checkpoints or checkpoint > line.checkpoints[-1]:
            line.times.append(at)
            line.checkpoints.append(checkpoint)

    def __enter__(self) -> CheckpointWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.stop()
        self.redis.close()
        self.pg.close()


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _open_loop(
    shop: Shop, requests: Any, rate: float, seconds: float, fields: tuple[str, ...]
) -> Any:
    """Orders POSTed at a fixed `rate` for `seconds`, keeping `fields` of each answer."""
    spec = load.spec(
        shop.api,
        requests,
        mode="open",
        rate=rate,
        duration=seconds,
        concurrency=256,
        warmup=min(2.0, seconds / 5),
        fields=fields,
    )
    return _run_idle(shop, spec)


def freshness(shop: Shop, rate: float, seconds: float, drain: float) -> list[Metric]:
    """Open-loop orders at `rate`; commit (the 202) to visible in each read model."""
    requests = _post_requests(shop)
    meter = shop.cpu_meter()
    with CheckpointWatcher(shop) as watcher:
        meter.start()
        result = _open_loop(shop, requests, rate, seconds, ("order_id", "consistency_token"))
        orders = [(end, Checkpoint.parse(f["consistency_token"])) for _, end, _, f in result.ok]
        last = max((token for _, token in orders), default=Checkpoint())

        def applied() -> bool:
            return all(
                line.checkpoints and line.checkpoints[-1] >= last
                for line in watcher.timelines.values()
            )

        _wait_for(applied, drain)
        cpu = cpu_budget(meter.stop(), len(result.ok), rate)
    metrics = []
    post = load.summary(result)
    for name, line in watcher.timelines.items():
        delays = []
        missing = 0
        for committed, token in orders:
            seen = line.first_reaching(token)
            if seen is None:
                missing += 1
                delays.append(math.inf)
            else:
                delays.append(max(0.0, seen - committed))
        p99 = percentile(delays, 99) * 1000
        metrics.append(
            Metric(
                f"freshness: commit to visible in {name} at {rate:.0f} orders/s, p99",
                p99,
                "ms",
                "p99 <= 100 ms",
                p99 <= 100 and missing == 0 and result.errors == 0,
                None,
                None,
                {
                    "rate": rate,
                    "seconds": seconds,
                    "workers": len(shop.workers),
                    "poll_interval_ms": 5,
                    "from": "the 202 response (the commit is just before it)",
                },
                {
                    "p50_ms": round(percentile(delays, 50) * 1000, 2),
                    "p90_ms": round(percentile(delays, 90) * 1000, 2),
                    "max_ms": round(max(delays, default=math.nan) * 1000, 2),
                    "orders": len(orders),
                    "never_visible": missing,
                    "post": post,
                    "cpu": cpu,
                },
            )
        )
    return metrics


class ConfirmationWatcher:
    """Follows the log (gap-free, like a subscription) and notes when each order is
    confirmed or cancelled."""

    def __init__(self, shop: Shop, interval: float = 0.005) -> None:
        self.pg = psycopg.connect(libpq(shop.settings.require()[0]), autocommit=True)
        self.checkpoint = shop.head()
        self.confirmed: dict[str, float] = {}
        self.cancelled: dict[str, float] = {}
        self.thread = Watcher(self.poll, interval)

    def poll(self) -> None:
        rows = self.pg.execute(
            """
            SELECT transaction_id::text::bigint, position, type, data ->> 'order_id' FROM events
            WHERE (transaction_id, position) > (CAST(CAST(%s AS text) AS xid8), %s)
              AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY transaction_id, position LIMIT 5000
            """,
            (self.checkpoint.transaction_id, self.checkpoint.position),
        ).fetchall()
        now = time.monotonic()
        for tx, position, kind, order_id in rows:
            if kind == "OrderConfirmed":
                self.confirmed.setdefault(order_id, now)
            elif kind == "OrderCancelled":
                self.cancelled.setdefault(order_id, now)
            self.checkpoint = Checkpoint(tx, position)

    def __enter__(self) -> ConfirmationWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.stop()
        self.pg.close()


def cpu_budget(used: dict[str, float], orders: int, rate: float) -> dict[str, Any]:
    """CPU per order, per component, and the cores the offered rate needs.

    Measured from the first POST until the last order was handled (or the drain
    ran out), so it covers all the work the orders caused.
    """
    per_order = {name: round(s * 1000 / orders, 2) if orders else None for name, s in used.items()}
    total_ms = sum(used.values()) * 1000 / orders if orders else math.nan
    return {
        "cpu_s": used,
        "cpu_ms_per_order": per_order,
        "cpu_ms_per_order_total": round(total_ms, 2),
        "cores_needed_at_rate": round(total_ms * rate / 1000, 2),
        "cores": cores(),
    }


def saga_latency(shop: Shop, rate: float, seconds: float, drain: float) -> Metric:
    """Open-loop tok_visa orders at `rate`; the 202 to OrderConfirmed committed."""
    requests = _post_requests(shop)
    meter = shop.cpu_meter()
    with ConfirmationWatcher(shop) as watcher:
        meter.start()
        result = _open_loop(shop, requests, rate, seconds, ("order_id",))
        placed = {f["order_id"]: end for _, end, _, f in result.ok}
        _wait_for(
            lambda: all(o in watcher.confirmed or o in watcher.cancelled for o in placed), drain
        )
        cpu = cpu_budget(meter.stop(), len(placed), rate)
    delays = [
        max(0.0, watcher.confirmed[o] - done) if o in watcher.confirmed else math.inf
        for o, done in placed.items()
    ]
    unconfirmed = sum(1 for delay in delays if math.isinf(delay))
    cancelled = sum(1 for o in placed if o in watcher.cancelled)
    p99 = percentile(delays, 99) * 1000
    return Metric(
        f"saga: placed to confirmed at {rate:.0f} orders/s (tok_visa), p99",
        p99,
        "ms",
        "p99 <= 300 ms",
        p99 <= 300 and unconfirmed == 0 and result.errors == 0,
        None,
        None,
        {"rate": rate, "seconds": seconds, "workers": len(shop.workers), "poll_interval_ms": 5},
        {
            "p50_ms": round(percentile(delays, 50) * 1000, 2),
            "p90_ms": round(percentile(delays, 90) * 1000, 2),
            "orders": len(placed),
            "not_confirmed_within_drain": unconfirmed,
            "cancelled": cancelled,
            "drain_s": drain,
            "post": load.summary(result),
            "cpu": cpu,
        },
    )


def orders_by_customer(shop: Shop, per_customer: int = 5) -> dict[str, list[str]]:
    """Orders the order_detail read model holds, a few per customer (for the GET phase)."""
    side = shop.application.read_side
    generation = side.generations("order_detail").active
    found: dict[str, list[str]] = {}
    with psycopg.connect(libpq(shop.settings.require()[0])) as conn:
        rows = conn.execute(
            "SELECT customer_id, order_id FROM order_details WHERE generation = %s",
            (generation,),
        ).fetchall()
    for customer_id, order_id in rows:
        kept = found.setdefault(customer_id, [])
        if len(kept) < per_customer:
            kept.append(order_id)
    return found
