"""The API's capacity under abuse: the catalog's p99 with and without clients that send
consistency tokens naming no write and connections that send their headers slowly.

Before the API refused such tokens at once, four clients each holding a request open for
the whole wait bound (and polling PostgreSQL meanwhile) took `GET /api/products` from
5 ms to seconds; slow-header connections each held a whole sync worker.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from typing import Any

from bench import load
from bench.api import _pooled, _run_idle
from bench.results import Baseline, Metric
from bench.shop import Shop

FORGERS = 4
SLOW_CONNECTIONS = 2
SLOW_HEADER_EVERY = 5.0  # seconds between a slow connection's header lines
GOAL_RATIO = 2.0


class Attack:
    """Clients looping on forged consistency tokens, and slow-header connections, until
    stopped; what the forged requests were answered."""

    def __init__(self, shop: Shop, forged: bool = True) -> None:
        self.shop = shop
        self.forged = forged  # else the same clients loop on valid requests: the control
        self.stopping = threading.Event()
        self.answers: Counter[int] = Counter()
        self.slowest = 0.0
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def __enter__(self) -> Attack:
        head = self.shop.head()
        forged = [
            "99999999999999999999.1",  # beyond any transaction id
            f"{head.transaction_id}.{head.position + 1_000_000}",  # beyond the log's head
        ]
        customer = self.shop.customers[0]
        for index in range(FORGERS):
            query = f"?consistency_token={forged[index % len(forged)]}" if self.forged else ""
            self._start(self._forge, f"/api/orders{query}", customer.headers)
        for _ in range(SLOW_CONNECTIONS):
            self._start(self._send_slowly)
        time.sleep(1)  # every attacker under way
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=SLOW_HEADER_EVERY + 5)

    def _start(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _forge(self, path: str, headers: dict[str, str]) -> None:
        while not self.stopping.is_set():
            request = urllib.request.Request(self.shop.api + path, headers=headers)
            started = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
                error.close()
            with self.lock:
                self.answers[status] += 1
                self.slowest = max(self.slowest, time.monotonic() - started)

    def _send_slowly(self) -> None:
        url = urllib.parse.urlsplit(self.shop.api)
        with socket.create_connection((url.hostname or "", url.port or 80), timeout=30) as sock:
            sock.sendall(b"GET /api/products HTTP/1.1\r\nHost: bench\r\n")
            line = 0
            while not self.stopping.wait(SLOW_HEADER_EVERY):
                line += 1
                try:
                    sock.sendall(f"X-Slow-{line}: still typing\r\n".encode())
                except OSError:
                    return  # the server closed it: it is no longer held


def capacity(shop: Shop, rounds: int, seconds: float, rate: float) -> list[Metric]:
    """`GET /api/products` open loop at `rate`: quiet, under the attack, and under a
    control flood (the same looping clients sending valid requests), in turns."""
    requests = [{"method": "GET", "path": "/api/products"}]
    runs: dict[str, list[load.LoadResult]] = {"quiet": [], "attacked": [], "control": []}
    forged: Counter[int] = Counter()
    control: Counter[int] = Counter()
    slowest_forged = 0.0

    def measure() -> load.LoadResult:
        return _run_idle(
            shop,
            load.spec(shop.api, requests, mode="open", rate=rate, duration=seconds,
                      concurrency=64, warmup=min(1.0, seconds / 4)),
        )  # fmt: skip

    names = list(runs)
    for index in range(rounds):
        for name in names[index % 3 :] + names[: index % 3]:
            if name == "quiet":
                runs[name].append(measure())
                continue
            with Attack(shop, forged=name == "attacked") as attack:
                runs[name].append(measure())
            if name == "attacked":
                forged.update(attack.answers)
                slowest_forged = max(slowest_forged, attack.slowest)
            else:
                control.update(attack.answers)
    pooled = {name: _pooled(results) for name, results in runs.items()}
    quiet, attacked = pooled["quiet"]["p99_ms"], pooled["attacked"]["p99_ms"]
    ratio = attacked / quiet if quiet else float("inf")
    return [
        Metric(
            "GET /api/products p99 under abuse",
            attacked,
            "ms",
            f"<= {GOAL_RATIO:g}x its p99 without the abuse",
            ratio <= GOAL_RATIO and pooled["attacked"]["errors"] == 0,
            baseline=Baseline("the same GETs without abuse", quiet),
            ratio=round(quiet / attacked, 3) if attacked else None,
            parameters={
                "rate_per_s": rate,
                "seconds": seconds,
                "rounds": rounds,
                "forged_token_clients": FORGERS,
                "slow_header_connections": SLOW_CONNECTIONS,
                "slow_header_every_s": SLOW_HEADER_EVERY,
            },
            details={
                **pooled,
                "p99_ratio_attacked_to_quiet": round(ratio, 3),
                "p99_ratio_control_to_quiet": round(pooled["control"]["p99_ms"] / quiet, 3)
                if quiet
                else None,
                "forged_token_answers": dict(forged),
                "control_answers": dict(control),
                "slowest_forged_answer_ms": round(slowest_forged * 1000, 1),
            },
        )
    ]
