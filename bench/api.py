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
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

from bench import load
from bench.cpu import OBSERVER, CpuMeter, cores
from bench.env import libpq
from bench.results import Baseline, Metric
from bench.shop import Shop, order_body
from bench.stats import percentile
from config.database import sqlalchemy_url
from kernel.event_store import Checkpoint, ConsistencyToken
from kernel.horizon import WRITER_LOCKS, horizon
from kernel.unit_of_work import STREAM_LOCKS
from projections.order_list import Keys, prefix


def post_requests(shop: Shop, token: str = "pm_card_visa") -> list[dict[str, Any]]:
    return [
        {"method": "POST", "path": "/api/orders", "headers": c.headers, "body": order_body(token)}
        for c in shop.customers
    ]


def post_throughput(shop: Shop, rounds: int, seconds: float, concurrency: int) -> list[Metric]:
    """Closed-loop POST /api/orders against a minimal Flask POST, rounds interleaved."""
    target = post_requests(shop)
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
    """Records every partition's checkpoint of order_list (Redis) and order_detail
    (PostgreSQL) over time."""

    def __init__(self, shop: Shop, interval: float = 0.005) -> None:
        side = shop.application.read_side
        self.list_key = Keys(prefix(side.generations("order_list").active)).checkpoint()
        self.names = {
            "order_list": side.projection("order_list")
            .subscriber(side.generations("order_list").active)
            .name,
            "order_detail": side.projection("order_detail")
            .subscriber(side.generations("order_detail").active)
            .name,
        }
        counts = shop.partition_counts()
        default = shop.settings.subscription_partitions
        self.partitions = {model: counts.get(name, default) for model, name in self.names.items()}
        self.redis = Redis.from_url(shop.settings.require()[1])
        self.pg = observer_connection(shop)
        self.timelines = {
            (model, p): Timeline([], [])
            for model, count in self.partitions.items()
            for p in range(count)
        }
        self.thread = Watcher(self.poll, interval)

    def poll(self) -> None:
        keys = [f"{self.list_key}:{p}" for p in range(self.partitions["order_list"])]
        raws = self.redis.mget(keys)
        now = time.monotonic()
        for partition, raw in enumerate(raws):
            if raw:
                text = raw.decode() if isinstance(raw, bytes) else str(raw)
                self._add(("order_list", partition), now, Checkpoint.parse(text))
        rows = self.pg.execute(
            "SELECT partition, transaction_id, position FROM subscriptions WHERE name = %s",
            (self.names["order_detail"],),
        ).fetchall()
        now = time.monotonic()
        for partition, tx, position in rows:
            if ("order_detail", partition) in self.timelines:
                self._add(("order_detail", partition), now, Checkpoint(tx, position))

    def _add(self, key: tuple[str, int], at: float, checkpoint: Checkpoint) -> None:
        line = self.timelines[key]
        if not line.checkpoints or checkpoint > line.checkpoints[-1]:
            line.times.append(at)
            line.checkpoints.append(checkpoint)

    def line_of(self, model: str, token: ConsistencyToken) -> Timeline:
        """The timeline of the partition of `model` that applies the token's event."""
        return self.timelines[(model, (token.slot or 0) % self.partitions[model])]

    def reached(self, model: str, token: ConsistencyToken) -> bool:
        line = self.line_of(model, token)
        return bool(line.checkpoints) and line.checkpoints[-1] >= token.checkpoint

    def __enter__(self) -> CheckpointWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.stop()
        self.redis.close()
        self.pg.close()


def observer_connection(shop: Shop) -> psycopg.Connection[Any]:
    """An autocommit session for the bench's watchers, named so that CPU accounting
    leaves it out (bench.cpu.OBSERVER)."""
    return psycopg.connect(
        libpq(shop.settings.require()[0]), autocommit=True, application_name=OBSERVER
    )


class WaitSampler:
    """What the shop's PostgreSQL sessions are doing, sampled every `interval` seconds:
    running on a CPU, waiting for a lock (and which kind), for I/O, or for their client;
    and the age of the oldest event-store writer still running (kernel.horizon), which
    every reader of the log waits for."""

    def __init__(self, shop: Shop, interval: float = 0.1) -> None:
        self.conn = psycopg.connect(
            libpq(shop.settings.require()[0]), autocommit=True, application_name=OBSERVER
        )
        self.database = make_url(shop.settings.require()[0]).database
        self.counts: dict[str, int] = {}
        self.samples = 0
        self.writer_ages: list[float] = []
        self.lock_waits: dict[int, int] = {}  # stream lock (its hash) -> sessions seen waiting
        self.thread = Watcher(self.poll, interval)

    def poll(self) -> None:
        rows = self.conn.execute(
            """
            SELECT CASE WHEN state = 'active' AND wait_event IS NULL THEN 'running'
                        WHEN state LIKE 'idle in transaction%%' THEN 'idle in transaction'
                        WHEN state = 'active' THEN wait_event_type || ':' || wait_event
                        ELSE 'idle' END, count(*)
            FROM pg_stat_activity
            WHERE datname = %s AND application_name <> %s AND backend_type = 'client backend'
            GROUP BY 1
            """,
            (self.database, OBSERVER),
        ).fetchall()
        self.samples += 1
        for what, count in rows:
            self.counts[what] = self.counts.get(what, 0) + count
        row = self.conn.execute(
            """
            SELECT coalesce(extract(epoch FROM max(clock_timestamp() - a.xact_start)), 0)
            FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objsubid = 2 AND l.granted
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """,
            (WRITER_LOCKS,),
        ).fetchone()
        self.writer_ages.append(float(row[0]) if row else 0.0)
        for (objid,) in self.conn.execute(
            "SELECT objid::text::bigint FROM pg_locks WHERE locktype = 'advisory'"
            " AND classid = %s AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (STREAM_LOCKS,),
        ):
            self.lock_waits[objid] = self.lock_waits.get(objid, 0) + 1

    def _streams_waited_for(self, top: int = 5) -> dict[str, float]:
        """The streams whose locks sessions waited for most (average sessions waiting)."""
        worst = sorted(self.lock_waits.items(), key=lambda item: -item[1])[:top]
        if not worst:
            return {}
        rows = self.conn.execute(
            "SELECT DISTINCT stream_id, hashtext(stream_id)::bigint & 4294967295 FROM events"
            " WHERE hashtext(stream_id)::bigint & 4294967295 = ANY(%s)",
            ([objid for objid, _ in worst],),
        ).fetchall()
        names = {int(objid): str(stream) for stream, objid in rows}
        samples = max(1, self.samples)
        return {names.get(objid, str(objid)): round(n / samples, 2) for objid, n in worst}

    summarised: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """Average sessions in each state over the samples (idle ones left out)."""
        if self.summarised is not None:
            return self.summarised
        samples = max(1, self.samples)
        busy = {k: round(v / samples, 2) for k, v in self.counts.items() if k != "idle"}
        ages = self.writer_ages
        return {
            "samples": self.samples,
            "average_sessions": dict(sorted(busy.items())),
            "event_store_writer_running_share": round(
                sum(1 for age in ages if age > 0) / len(ages), 2
            )
            if ages
            else None,
            "stream_locks_waited_for": self._streams_waited_for(),
            "oldest_writer_age_ms": {
                "p50": round(percentile(ages, 50) * 1000, 1),
                "p90": round(percentile(ages, 90) * 1000, 1),
                "max": round(max(ages, default=math.nan) * 1000, 1),
            },
        }

    def __enter__(self) -> WaitSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.stop()
        self.summarised = self.summary()
        self.conn.close()


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def open_loop(
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
    """Open-loop orders at `rate`; commit (the 202) to visible in each read model: the
    partition of the read model that applies the order's last event has reached its
    consistency token."""
    requests = post_requests(shop)
    meter = shop.cpu_meter()
    waits = WaitSampler(shop)
    with CheckpointWatcher(shop) as watcher, waits:
        meter.start()
        result = open_loop(shop, requests, rate, seconds, ("order_id", "consistency_token"))
        orders = [
            (end, ConsistencyToken.parse(f["consistency_token"])) for _, end, _, f in result.ok
        ]

        def applied() -> bool:
            return all(watcher.reached(m, token) for _, token in orders for m in watcher.names)

        wait_for(applied, drain)
        cpu = cpu_budget(meter, result.sent, rate)
    metrics = []
    post = load.summary(result)
    for name in watcher.names:
        delays = []
        missing = 0
        for committed, token in orders:
            seen = watcher.line_of(name, token).first_reaching(token.checkpoint)
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
                    "partitions": watcher.partitions[name],
                    "poll_interval_ms": 5,
                    "from": "the 202 response (the commit is just before it)",
                    "to": "the checkpoint of the partition holding the token's slot reaches it",
                },
                {
                    "p50_ms": round(percentile(delays, 50) * 1000, 2),
                    "p90_ms": round(percentile(delays, 90) * 1000, 2),
                    "max_ms": round(max(delays, default=math.nan) * 1000, 2),
                    "orders": len(orders),
                    "never_visible": missing,
                    "postgres_sessions_by_wait": waits.summary(),
                    "post": post,
                    "cpu": cpu,
                },
            )
        )
    return metrics


class ConfirmationWatcher:
    """Follows the log gap-free, as a subscription does (below the horizon of
    kernel.horizon: only this shop's event-store writers hold it back), and notes when
    each order is confirmed or cancelled."""

    def __init__(self, shop: Shop, interval: float = 0.005) -> None:
        self.engine = create_engine(
            sqlalchemy_url(shop.settings.require()[0]),
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"application_name": OBSERVER},
        )
        self.conn = self.engine.connect()
        self.pg: Any = self.conn.connection.driver_connection
        self.checkpoint = shop.head()
        self.confirmed: dict[str, float] = {}
        self.cancelled: dict[str, float] = {}
        self.confirmations: list[tuple[float, int]] = []  # (seen at, slot), in log order
        self.polls = 0
        self.thread = Watcher(self.poll, interval)

    def poll(self) -> None:
        bound = horizon(self.conn)
        rows = self.pg.execute(
            """
            SELECT transaction_id::text::bigint, position, type, data ->> 'order_id', slot
            FROM events
            WHERE (transaction_id, position) > (CAST(CAST(%s AS text) AS xid8), %s)
              AND transaction_id < CAST(CAST(%s AS text) AS xid8)
            ORDER BY transaction_id, position LIMIT 5000
            """,
            (self.checkpoint.transaction_id, self.checkpoint.position, bound),
        ).fetchall()
        now = time.monotonic()
        self.polls += 1
        for tx, position, kind, order_id, slot in rows:
            if kind == "OrderConfirmed":
                if order_id not in self.confirmed:
                    self.confirmed[order_id] = now
                    self.confirmations.append((now, slot))
            elif kind == "OrderCancelled":
                self.cancelled.setdefault(order_id, now)
            self.checkpoint = Checkpoint(tx, position)

    def __enter__(self) -> ConfirmationWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.stop()
        self.conn.close()
        self.engine.dispose()


def cpu_budget(meter: CpuMeter, orders: int, rate: float) -> dict[str, Any]:
    """Stop `meter`: CPU per order, per component, and the cores the offered rate needs.

    Measured from the first POST until the work the orders caused was done (or the
    drain ran out), so it covers all of it. The bench's own watchers are left out
    (`observers_cpu_s`, for reference).
    """
    used = meter.stop()
    per_order = {name: round(s * 1000 / orders, 2) if orders else None for name, s in used.items()}
    total_ms = sum(used.values()) * 1000 / orders if orders else math.nan
    return {
        "cpu_s": used,
        "cpu_ms_per_order": per_order,
        "cpu_ms_per_order_total": round(total_ms, 2),
        "cores_needed_at_rate": round(total_ms * rate / 1000, 2),
        "cores": cores(),
        "observers_cpu_s": meter.observers_s,
    }


def confirmation_delays(
    placed: dict[str, float], watcher: ConfirmationWatcher
) -> tuple[list[float], int]:
    """Each order's placed (202) to OrderConfirmed seen, seconds (inf if never), and how
    many were never confirmed."""
    delays = [
        max(0.0, watcher.confirmed[o] - done) if o in watcher.confirmed else math.inf
        for o, done in placed.items()
    ]
    return delays, sum(1 for delay in delays if math.isinf(delay))


def spread(delays: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max of delays in seconds, as milliseconds."""
    return {
        "p50_ms": round(percentile(delays, 50) * 1000, 2),
        "p90_ms": round(percentile(delays, 90) * 1000, 2),
        "p99_ms": round(percentile(delays, 99) * 1000, 2),
        "max_ms": round(max(delays, default=math.nan) * 1000, 2),
    }


def idle_cpu(shop: Shop, seconds: float) -> dict[str, float]:
    """What the system (API, workers, PostgreSQL) spends per second doing nothing: RQ's
    polling and heartbeats, the periodic sweep over every partition."""
    meter = shop.cpu_meter()
    meter.start()
    time.sleep(seconds)
    return {name: round(used / seconds, 4) for name, used in meter.stop().items()}


def saga_latency(
    shop: Shop,
    rate: float,
    seconds: float,
    drain: float,
    *,
    sustained: bool = False,
    idle_s: float = 3.0,
) -> list[Metric]:
    """Open-loop pm_card_visa orders at `rate` for `seconds`; the 202 to OrderConfirmed
    committed (p50/p90/p99, orders never confirmed), and the CPU per order of every
    process until the orders are confirmed and the read models have caught up (with,
    for reference, what the system spends per second when idle, measured just before)."""
    requests = post_requests(shop)
    background = idle_cpu(shop, idle_s)
    meter = shop.cpu_meter()
    waits = WaitSampler(shop)
    with ConfirmationWatcher(shop) as watcher, waits:
        began = time.monotonic()
        meter.start()
        result = open_loop(shop, requests, rate, seconds, ("order_id",))
        placed = {f["order_id"]: end for _, end, _, f in result.ok}
        settled = wait_for(
            lambda: all(o in watcher.confirmed or o in watcher.cancelled for o in placed), drain
        )
        confirmed_at = time.monotonic()
        lagging = shop.wait_caught_up(drain)
        caught_up_at = time.monotonic()
        # Every order sent counts (the load generator's warm-up too: its CPU is in there).
        cpu = cpu_budget(meter, result.sent, rate)
    window = caught_up_at - began
    idle_total = sum(background.values())
    cpu["idle_cpu_cores"] = background
    cpu["window_s"] = round(window, 2)
    cpu["cpu_ms_per_order_total_net_of_idle"] = (
        round(cpu["cpu_ms_per_order_total"] - idle_total * window * 1000 / result.sent, 2)
        if result.sent
        else math.nan
    )
    delays, unconfirmed = confirmation_delays(placed, watcher)
    cancelled = sum(1 for o in placed if o in watcher.cancelled)
    found = spread(delays)
    p99 = found["p99_ms"]
    workers = len(shop.workers)
    parameters = {
        "rate": rate,
        "seconds": seconds,
        "workers": workers,
        "partitions": shop.settings.subscription_partitions,
        "poll_interval_ms": 5,
        "from": "the 202 response (the commit is just before it)",
        "to": "OrderConfirmed visible below the log's horizon",
    }
    details = {
        **found,
        "orders": len(placed),
        "orders_sent_with_warmup": result.sent,
        "not_confirmed_within_drain": unconfirmed,
        "cancelled": cancelled,
        "drain_s": drain,
        "settled_within_drain": settled,
        "confirmed_s_after_start": round(confirmed_at - began, 2),
        "read_models_caught_up_s_after_start": round(caught_up_at - began, 2),
        "still_lagging": lagging,
        "postgres_sessions_by_wait": waits.summary(),
        "post": load.summary(result),
        "cpu": cpu,
    }
    ok = unconfirmed == 0 and result.errors == 0
    if sustained:
        latency = Metric(
            f"sustained {rate:.0f} orders/s for {seconds:.0f} s: placed to confirmed p99",
            p99,
            "ms",
            "every order confirmed, p99 <= 1 s",
            p99 <= 1000 and ok,
            None,
            None,
            parameters,
            details,
        )
    else:
        latency = Metric(
            f"saga: placed to confirmed at {rate:.0f} orders/s for {seconds:.0f} s, p99",
            p99,
            "ms",
            "p99 <= 300 ms",
            p99 <= 300 and ok,
            None,
            None,
            parameters,
            details,
        )
    total = cpu["cpu_ms_per_order_total"]
    split = cpu["cpu_ms_per_order"]
    return [
        latency,
        Metric(
            f"CPU per order, all processes (API, workers, PostgreSQL) at {rate:.0f} orders/s",
            total,
            "ms",
            "<= 15 ms (was 31 ms)",
            total <= 15,
            None,
            None,
            {
                **parameters,
                "window": "first POST until every order confirmed and the read models caught up",
            },
            {
                "api_ms": split.get("api"),
                "workers_ms": split.get("workers"),
                "postgres_ms": split.get("postgres"),
                **cpu,
            },
        ),
    ]


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
