"""Issue 13's figures for partitioned, leased subscriptions: the idle path (read your
writes, placed to confirmed), the saga's backlog drain with one worker and with two, a
worker frozen while it holds a partition's lease, an idle writer of another database,
and every worker's memory over the whole run."""

from __future__ import annotations

import itertools
import math
import os
import signal
import subprocess
import threading
import time
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from redis import Redis
from sqlalchemy import make_url

from bench import eventgen, load
from bench.api import (
    ConfirmationWatcher,
    WaitSampler,
    confirmation_delays,
    cpu_budget,
    post_requests,
    spread,
    wait_for,
)
from bench.cpu import OBSERVER
from bench.env import Processes, Servers, bench_settings, libpq, rss_mb
from bench.results import Baseline, Metric
from bench.shop import PLENTY, Shop, http_json, order_body
from bench.stats import percentile
from kernel.horizon import WRITER_LOCKS
from kernel.partitions import slot_of
from kernel.unit_of_work import STREAM_LOCKS

STALL_S = 1.0
"""A gap between confirmations longer than this, with orders flowing at 50/s, is a stall."""
WAITED_TOO_LONG_S = 3.0
"""An order that waits longer than this for its confirmation counts as held up."""


# --- idle: one order at a time --------------------------------------------------------


def idle(shop: Shop, orders: int, pause: float = 0.2, warmup: int = 3) -> list[Metric]:
    """One order at a time on an otherwise idle system: POST /api/orders, then GET
    /api/orders/{id} with its consistency token (read your writes: from the 202 to the
    answer); and from the 202 to its OrderConfirmed visible in the log (a watcher
    polling every millisecond). The first `warmup` orders are not counted."""
    customer = shop.customers[0]
    ryw: list[float] = []
    confirmed: list[float] = []
    post: list[float] = []
    stale = failed = 0
    with ConfirmationWatcher(shop, interval=0.001) as watcher:
        for n in range(orders + warmup):
            sent = time.monotonic()
            found = http_json(
                "POST", f"{shop.api}/api/orders", order_body(), headers=customer.headers
            )
            placed = time.monotonic()
            order_id, token = found["order_id"], found["consistency_token"]
            try:
                answer = http_json(
                    "GET",
                    f"{shop.api}/api/orders/{order_id}?consistency_token={token}",
                    headers=customer.headers,
                )
            except urllib.error.HTTPError:
                answer = None
            answered = time.monotonic()
            while order_id not in watcher.confirmed and time.monotonic() - placed < 10:
                time.sleep(0.001)
            if n >= warmup:
                post.append(placed - sent)
                ryw.append(answered - placed)
                confirmed.append(watcher.confirmed.get(order_id, math.inf) - placed)
                if answer is None:
                    failed += 1
                elif answer.get("read_model", {}).get("stale"):
                    stale += 1
            time.sleep(pause)
        polls = watcher.polls
    parameters = {
        "orders": orders,
        "warmup_orders": warmup,
        "pause_s": pause,
        "workers": len(shop.workers),
        "partitions": shop.settings.subscription_partitions,
        "watcher_poll_ms": 1,
    }
    ryw_p50 = percentile(ryw, 50) * 1000
    confirmed_p50 = percentile(confirmed, 50) * 1000
    never = sum(1 for delay in confirmed if math.isinf(delay))
    return [
        Metric(
            "idle: read your writes (202 to GET /api/orders/{id} with its token answered), p50",
            ryw_p50,
            "ms",
            "p50 <= 20 ms",
            ryw_p50 <= 20 and stale == 0 and failed == 0,
            None,
            None,
            parameters,
            {**spread(ryw), "stale_answers": stale, "failed_gets": failed, "post": spread(post)},
        ),
        Metric(
            "idle: placed to confirmed (202 to OrderConfirmed visible), p50",
            confirmed_p50,
            "ms",
            "p50 <= 60 ms",
            confirmed_p50 <= 60 and never == 0,
            None,
            None,
            parameters,
            {**spread(confirmed), "never_confirmed": never, "watcher_polls": polls},
        ),
    ]


# --- drain: the saga's backlog with one worker, then two --------------------------------


def drain(
    servers: Servers,
    name: str,
    redis_url: str,
    processes: Processes,
    logs: Path,
    orders: int,
    give_up: float,
    products: int = 40,
) -> list[Metric]:
    """The saga works off a backlog of `orders` placed orders (1-3 lines each of
    `products` products), first with one worker, then (a fresh database, the same
    backlog) with two: orders confirmed per second."""
    catalog = eventgen.catalog(products)
    runs = {
        workers: _drain_once(
            servers,
            f"{name}_drain{workers}",
            redis_url,
            processes,
            logs,
            orders,
            workers,
            give_up,
            catalog,
        )
        for workers in (1, 2)
    }
    one, two = runs[1], runs[2]
    ratio = two["orders_per_s"] / one["orders_per_s"] if one["orders_per_s"] else math.nan
    parameters = {
        "orders": orders,
        "backlog": "an OrderPlaced per order (COPY), workers idle; then every partition woken",
        "products": len(catalog),
        "lines_per_order": "1-3 products, 1-3 of each",
        "to": "every order's OrderConfirmed visible in the log",
        "partitions": runs[2]["partitions"],
        "saga_batch_size": runs[2]["saga_batch_size"],
    }
    return [
        Metric(
            "saga backlog drain, 1 worker",
            one["orders_per_s"],
            "orders/s",
            "- (baseline of the next)",
            one["unconfirmed"] == 0,
            None,
            None,
            {**parameters, "workers": 1},
            one,
        ),
        Metric(
            "saga backlog drain, 2 workers vs 1",
            two["orders_per_s"],
            "orders/s",
            ">= 1.5 x 1 worker",
            ratio >= 1.5 and two["unconfirmed"] == 0 and one["unconfirmed"] == 0,
            Baseline("1 worker, same backlog, same run", one["orders_per_s"]),
            ratio,
            {**parameters, "workers": 2},
            two,
        ),
    ]


def _drain_once(
    servers: Servers,
    database: str,
    redis_url: str,
    processes: Processes,
    logs: Path,
    orders: int,
    workers: int,
    give_up: float,
    catalog: tuple[tuple[str, str, int], ...],
) -> dict[str, Any]:
    url = servers.create_database(database)
    redis = Redis.from_url(redis_url)
    redis.flushdb()  # a fresh shop: its order list, queues and wake-up flags start empty
    shop = Shop.build(bench_settings(url, redis_url, logs, servers.stripe_url), processes)
    try:
        for sku, product, price in catalog:
            shop.add_product(sku, product, price, PLENTY)
        shop.start_workers(workers, label=f"drain{workers}")
        shop.wait_caught_up(30)  # the seeding's wake-ups are done: the workers are idle
        meter = shop.cpu_meter()
        waits = WaitSampler(shop)
        with ConfirmationWatcher(shop, interval=0.05) as watcher, waits:
            eventgen.copy_events(
                f"{libpq(url)}?application_name={OBSERVER}",
                eventgen.placed_orders(shop.application.registry, orders, catalog),
            )
            began = time.monotonic()
            meter.start()
            shop.application.queues.wake(shop.subscription_names())
            settled = wait_for(
                lambda: len(watcher.confirmed) + len(watcher.cancelled) >= orders, give_up
            )
            done = max((at for at, _ in watcher.confirmations), default=math.nan)
            lagging = shop.wait_caught_up(give_up)
            caught_up = time.monotonic()
            cpu = cpu_budget(meter, orders, 0)
        seconds = done - began
        confirmed = len(watcher.confirmed)
        # Orders confirmed in each second from the start: a steady rate, or not.
        by_second: dict[int, int] = {}
        for at, _ in watcher.confirmations:
            by_second[int(at - began)] = by_second.get(int(at - began), 0) + 1
        steps = [by_second.get(n, 0) for n in range(max(by_second, default=-1) + 1)]
        return {
            "orders_per_s": round(confirmed / seconds, 1) if seconds > 0 and settled else 0.0,
            "seconds": round(seconds, 2),
            "confirmed": confirmed,
            "cancelled": len(watcher.cancelled),
            "unconfirmed": orders - confirmed,
            "settled_within_give_up": settled,
            "give_up_s": give_up,
            "read_models_caught_up_s": round(caught_up - began, 2),
            "still_lagging": lagging,
            "confirmed_by_second": steps,
            "postgres_sessions_by_wait": waits.summary(),
            "partitions": shop.partition_counts().get(shop.application.saga.name),
            "saga_batch_size": shop.settings.saga_batch_size,
            "workers": workers,
            "cpu": cpu,
        }
    finally:
        shop.stop_workers()
        shop.close()
        redis.close()


# --- frozen: SIGSTOP a worker that holds a lease ----------------------------------------


@dataclass
class Victim:
    pid: int
    holder: str
    held: list[tuple[str, int]]  # (subscription, partition) it held when stopped
    stopped_at: float
    log: Path | None
    log_offset: int
    sessions: list[dict[str, Any]] = field(default_factory=list)


def _sessions_of(shop: Shop, pid: int) -> list[dict[str, Any]]:
    """The PostgreSQL sessions of a local process (matched by client port through `ss`):
    their state, transaction age, the stream locks (kernel.unit_of_work.STREAM_LOCKS)
    they hold, how many other sessions wait for them, and whether each is a declared
    event-store writer (kernel.horizon), which every reader of the log waits for."""
    port = make_url(shop.settings.require()[0]).port or 5432
    listing = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( dport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    ports = [
        int(line.split()[2].rsplit(":", 1)[1]) for line in listing.splitlines()
        if f"pid={pid}," in line
    ]  # fmt: skip
    if not ports:
        return []
    with psycopg.connect(
        libpq(shop.settings.require()[0]), autocommit=True, application_name=OBSERVER
    ) as conn:
        rows = conn.execute(
            """
            SELECT a.pid, a.state, extract(epoch FROM now() - a.xact_start),
                   (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid
                      AND l.locktype = 'advisory' AND l.classid = %s AND l.granted),
                   (SELECT count(*) FROM pg_stat_activity b
                      WHERE a.pid = ANY(pg_blocking_pids(b.pid))),
                   left(a.query, 120),
                   EXISTS (SELECT FROM pg_locks l WHERE l.pid = a.pid
                      AND l.locktype = 'advisory' AND l.classid = %s AND l.objsubid = 2
                      AND l.granted),
                   a.backend_xid::text
            FROM pg_stat_activity a WHERE a.client_port = ANY(%s)
            """,
            (STREAM_LOCKS, WRITER_LOCKS, ports),
        ).fetchall()
    return [
        {
            "backend": row[0],
            "state": row[1],
            "transaction_age_s": None if row[2] is None else round(float(row[2]), 2),
            "stream_locks_held": row[3],
            "sessions_waiting_for_it": row[4],
            "declared_event_store_writer": row[6],  # holds the horizon back while it runs
            "transaction_id": row[7],
            "last_query": row[5],
        }
        for row in rows
    ]


def _freeze_a_holder(shop: Shop, prefer: str, timeout: float = 15) -> Victim:
    """SIGSTOP (its whole process group: the worker and the scheduler it forked) a worker
    that holds a live lease, preferably one of subscription `prefer`; returns it with the
    partitions it holds."""
    pids = {w.pid: w for w in shop.workers}
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        leases = [
            (name, partition, holder)
            for name, partition, holder in shop.live_leases()
            if int(holder.rsplit(":", 1)[1]) in pids
        ]
        picked = [lease for lease in leases if lease[0] == prefer]
        if not picked and time.monotonic() - began > timeout / 3:
            picked = leases  # none of `prefer` yet: any lease will do
        if not picked:
            time.sleep(0.005)
            continue
        holder = picked[0][2]
        pid = int(holder.rsplit(":", 1)[1])
        log = _log_of(shop, pid)
        offset = log.stat().st_size if log else 0
        os.killpg(os.getpgid(pid), signal.SIGSTOP)
        stopped_at = time.monotonic()
        # What it holds now that it is stopped: rows still naming it, not run out.
        held = [(n, p) for n, p, h in shop.live_leases() if h == holder]
        if held:
            return Victim(pid, holder, held, stopped_at, log, offset)
        os.killpg(os.getpgid(pid), signal.SIGCONT)  # it let go just before: try again
    raise RuntimeError(f"no worker held a lease within {timeout} s")


def _log_of(shop: Shop, pid: int) -> Path | None:
    for name, child in shop.processes.workers:
        if child.pid == pid:
            return shop.processes.logs / f"{name}.log"
    return None


def frozen(
    shop: Shop, rate: float, before: float, freeze: float, after: float, drain_s: float
) -> list[Metric]:
    """Orders at `rate`; after `before` seconds a worker holding a live lease is
    SIGSTOPped for `freeze` seconds, then SIGCONTed. The longest gap between
    confirmations while it is frozen (other partitions must keep confirming), the worst
    placed to confirmed of the orders placed meanwhile, and how long each partition it
    held took to move again (its lease must run out and another worker take over)."""
    saga = shop.application.saga.name
    subscribers = shop.subscriptions()
    counts = shop.partition_counts()
    saga_partitions = counts.get(saga, shop.settings.subscription_partitions)
    with ConfirmationWatcher(shop) as watcher:
        running = load.Load(
            load.spec(
                shop.api,
                post_requests(shop),
                mode="open",
                rate=rate,
                duration=before + freeze + after,
                concurrency=256,
                fields=("order_id",),
            )
        )
        time.sleep(before)
        try:
            victim = _freeze_a_holder(shop, prefer=saga)
        except BaseException:
            running.process.kill()
            running.process.wait()
            raise
        at_stop = {key: shop.checkpoint(subscribers[key[0]], key[1]) for key in victim.held}
        moved: dict[tuple[str, int], float] = {}
        resumed_at = victim.stopped_at + freeze
        try:
            while time.monotonic() < resumed_at:
                if not victim.sessions and time.monotonic() - victim.stopped_at >= 1.0:
                    # Long enough for others to queue behind whatever it holds.
                    victim.sessions = _sessions_of(shop, victim.pid) or [{"found": False}]
                for key in victim.held:
                    if (
                        key not in moved
                        and shop.checkpoint(subscribers[key[0]], key[1]) > (at_stop[key])
                    ):
                        moved[key] = time.monotonic() - victim.stopped_at
                time.sleep(0.05)
        finally:
            os.killpg(os.getpgid(victim.pid), signal.SIGCONT)
        resumed_at = time.monotonic()
        result = running.wait()
        placed = {f["order_id"]: end for _, end, _, f in result.ok}
        settled = wait_for(
            lambda: all(o in watcher.confirmed or o in watcher.cancelled for o in placed),
            drain_s,
        )
        lagging = shop.wait_caught_up(drain_s)
    alive = next((w.poll() is None for w in shop.workers if w.pid == victim.pid), False)
    # Gaps between consecutive confirmations while it was frozen (the edges included).
    seen = [at for at, _ in watcher.confirmations if victim.stopped_at <= at <= resumed_at]
    edges = [victim.stopped_at, *seen, resumed_at]
    gap = max(b - a for a, b in itertools.pairwise(edges))
    frozen_saga = {p for n, p in victim.held if n == saga}
    during = {o: at for o, at in placed.items() if victim.stopped_at <= at <= resumed_at}
    delays, unconfirmed = confirmation_delays(during, watcher)
    by_side: dict[str, list[float]] = {"frozen_partitions": [], "other_partitions": []}
    for (order_id, _), delay in zip(during.items(), delays, strict=True):
        side = slot_of(order_id) % saga_partitions in frozen_saga
        by_side["frozen_partitions" if side else "other_partitions"].append(delay)
    _, all_unconfirmed = confirmation_delays(placed, watcher)
    worst_move = max((moved.get(key, math.inf) for key in victim.held), default=math.inf)
    log_lines = _log_since(victim.log, victim.log_offset)
    common = {
        "rate": rate,
        "frozen_s": round(resumed_at - victim.stopped_at, 1),
        "before_s": before,
        "after_s": after,
        "workers": len(shop.workers),
        "lease_seconds": shop.settings.lease_seconds,
        "idle_in_transaction_timeout_s": shop.settings.idle_in_transaction_timeout,
        "victim_held": [f"{n}#{p}" for n, p in victim.held],
    }
    details = {
        "longest_gap_s": round(gap, 3),
        "confirmations_while_frozen": len(seen),
        "orders_placed_while_frozen": len(during),
        "placed_while_frozen": spread(delays),
        "placed_while_frozen_in_its_saga_partitions": spread(by_side["frozen_partitions"]),
        "placed_while_frozen_in_other_saga_partitions": spread(by_side["other_partitions"]),
        f"other_partitions_waited_over_{WAITED_TOO_LONG_S:.0f}_s": sum(
            1 for d in by_side["other_partitions"] if d > WAITED_TOO_LONG_S
        ),
        "unconfirmed_placed_while_frozen": unconfirmed,
        "unconfirmed_all": all_unconfirmed,
        "orders": len(placed),
        "settled_within_drain": settled,
        "still_lagging": lagging,
        "victim_sessions_1s_after_stop": victim.sessions,
        "victim_alive_after": alive,
        "victim_log_lines_after_freeze": len(log_lines),
        "victim_log_sample": [line[:300] for line in log_lines[:5]],
        "post": load.summary(result),
    }
    moves = {f"{n}#{p}": round(moved.get((n, p), math.inf), 2) for n, p in victim.held}
    worst_delay = spread(delays)["max_ms"]
    return [
        Metric(
            f"frozen worker (SIGSTOP {freeze:.0f} s): longest gap between confirmations",
            gap,
            "s",
            f"no stall (every gap <= {STALL_S:.0f} s)",
            gap <= STALL_S,
            None,
            None,
            common,
            details,
        ),
        Metric(
            "frozen worker: worst placed to confirmed of orders placed while frozen",
            worst_delay,
            "ms",
            "- (reported; every order confirmed)",
            all_unconfirmed == 0,
            None,
            None,
            common,
            details,
        ),
        Metric(
            "frozen worker: its partitions moving again (SIGSTOP to checkpoint advancing)",
            worst_move,
            "s",
            "<= 10 s",
            worst_move <= 10,
            None,
            None,
            common,
            {"seconds_by_partition": moves, "moved_while_frozen": len(moved)},
        ),
    ]


def _log_since(log: Path | None, offset: int) -> list[str]:
    if log is None or not log.exists():
        return []
    with log.open("rb") as handle:
        handle.seek(offset)
        return [line.decode(errors="replace") for line in handle.read().splitlines()]


# --- foreign: an idle transaction of another database --------------------------------


def _orders_confirmed(
    shop: Shop, rate: float, seconds: float, drain_s: float
) -> tuple[dict[str, Any], load.LoadResult]:
    """Orders at `rate` for `seconds`, then until each is confirmed (or `drain_s` ran
    out): the spread of placed to confirmed, and the load's result."""
    with ConfirmationWatcher(shop) as watcher:
        result = load.run(
            load.spec(
                shop.api,
                post_requests(shop),
                mode="open",
                rate=rate,
                duration=seconds,
                concurrency=256,
                warmup=min(2.0, seconds / 5),
                fields=("order_id",),
            )
        )
        placed = {f["order_id"]: end for _, end, _, f in result.ok}
        settled = wait_for(
            lambda: all(o in watcher.confirmed or o in watcher.cancelled for o in placed),
            drain_s,
        )
    delays, unconfirmed = confirmation_delays(placed, watcher)
    return {
        **spread(delays),
        "orders": len(placed),
        "unconfirmed": unconfirmed,
        f"waited_over_{WAITED_TOO_LONG_S:.0f}_s": sum(1 for d in delays if d > WAITED_TOO_LONG_S),
        "settled_within_drain": settled,
        "post": load.summary(result),
    }, result


def foreign(
    shop: Shop, servers: Servers, name: str, rate: float, seconds: float, drain_s: float
) -> list[Metric]:
    """Orders at `rate` for `seconds` while a session of another database on the same
    server has written a row and sits idle in its transaction (holding the cluster's
    xmin back). Placed to confirmed must not notice. Just before, the same load without
    it: the baseline of the same run, for the noise."""
    url = servers.create_database(name + "_foreign", migrated=False)
    without, _ = _orders_confirmed(shop, rate, seconds, drain_s)
    shop.wait_caught_up(drain_s)
    with psycopg.connect(libpq(url)) as parked:
        parked.execute("CREATE TABLE parked (n integer)")
        parked.commit()
        parked.execute("INSERT INTO parked VALUES (1)")
        row = parked.execute("SELECT pg_current_xact_id()::text").fetchone()
        xid = int(row[0]) if row else 0
        pid = parked.info.backend_pid
        parked_at = time.monotonic()
        xmins: list[int] = []
        sampling = threading.Event()
        thread = threading.Thread(target=_sample_xmin, args=(shop, xmins, sampling), daemon=True)
        thread.start()
        try:
            found, result = _orders_confirmed(shop, rate, seconds, drain_s)
        finally:
            sampling.set()
            thread.join()
        state = _session_state(servers, pid)
        held_s = time.monotonic() - parked_at
        parked.rollback()
    late = found[f"waited_over_{WAITED_TOO_LONG_S:.0f}_s"]
    held_back = bool(xmins) and all(x <= xid for x in xmins)
    p99, base = found["p99_ms"], without["p99_ms"]
    return [
        Metric(
            f"foreign idle writer in another database, {rate:.0f} orders/s for {seconds:.0f} s:"
            " placed to confirmed p99",
            p99,
            "ms",
            f"no stall (every order confirmed, none waits > {WAITED_TOO_LONG_S:.0f} s)",
            found["unconfirmed"] == 0 and late == 0 and result.errors == 0,
            Baseline("the same load just before, without it: p99", base),
            base / p99 if p99 else None,
            {
                "rate": rate,
                "seconds": seconds,
                "workers": len(shop.workers),
                "foreign": "another database on the server: INSERT, then idle in transaction",
                "ratio_note": "p99 without / p99 with (1 = no difference)",
            },
            {
                **found,
                "foreign_transaction_id": xid,
                "foreign_session_at_end": state,
                "foreign_idle_for_s": round(held_s, 1),
                "cluster_xmin_held_back_by_it": held_back,
                "without_foreign_writer": without,
            },
        )
    ]


def _sample_xmin(shop: Shop, found: list[int], done: threading.Event) -> None:
    """The cluster-wide snapshot xmin, once a second: what the old horizon waited for."""
    with psycopg.connect(libpq(shop.settings.require()[0]), autocommit=True) as conn:
        while not done.is_set():
            row = conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").fetchone()
            if row:
                found.append(int(row[0]))
            done.wait(1.0)


def _session_state(servers: Servers, pid: int) -> dict[str, Any]:
    with psycopg.connect(servers.admin_conninfo(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT state, backend_xid::text, datname FROM pg_stat_activity WHERE pid = %s",
            (pid,),
        ).fetchone()
    if row is None:
        return {"alive": False}
    return {"alive": True, "state": row[0], "backend_xid": row[1], "database": row[2]}


# --- worker memory over the run -------------------------------------------------------


@dataclass
class WorkerMemory:
    """Samples the RSS of every `rq worker` the bench starts, every `interval` s."""

    processes: Processes
    interval: float = 1.0
    samples: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, child in list(self.processes.workers):
                if child.poll() is None:
                    rss = rss_mb(child.pid)
                    if not math.isnan(rss):
                        self.samples.setdefault(child.pid, []).append((time.monotonic(), rss))
                        self.names[child.pid] = name
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def metric(self, warmup: float = 10.0) -> Metric | None:
        """Peak RSS of every worker; growth of the longest-running one, last sample minus
        its first (and minus its first after `warmup` seconds, which leaves out imports
        and first-use caches)."""
        if not self.samples:
            return None
        peak = max(rss for series in self.samples.values() for _, rss in series)
        pid, series = max(self.samples.items(), key=lambda item: item[1][-1][0] - item[1][0][0])
        span = series[-1][0] - series[0][0]
        warm = [rss for at, rss in series if at - series[0][0] >= warmup]
        growth = series[-1][1] - series[0][1]
        warm_growth = warm[-1] - warm[0] if warm else math.nan
        return Metric(
            "worker RSS over the whole run (every rq worker)",
            peak,
            "MB",
            "<= 200 MB, no growth",
            peak <= 200 and (warm_growth <= 5 if span >= 2 * warmup else True),
            None,
            None,
            {"sample_interval_s": self.interval, "warmup_s": warmup, "growth_tolerance_mb": 5},
            {
                "workers_sampled": len(self.samples),
                "longest_running": self.names[pid],
                "longest_running_s": round(span, 1),
                "longest_first_mb": round(series[0][1], 1),
                "longest_last_mb": round(series[-1][1], 1),
                "longest_growth_mb": round(growth, 1),
                "longest_growth_after_warmup_mb": round(warm_growth, 1),
                "growth_judged": span >= 2 * warmup,
                "peak_by_worker_mb": {
                    f"{self.names[p]} (pid {p})": round(max(rss for _, rss in s), 1)
                    for p, s in self.samples.items()
                },
            },
        )
