"""CPU time the system under test spends during a measurement, per component.

A latency goal at a fixed rate can only hold if the system needs fewer CPU-seconds
per second at that rate than the machine has cores. Summing the CPU time of the
API's gunicorn processes, the rq workers and the PostgreSQL backends serving the
bench's database (from /proc) over a load gives CPU-milliseconds per order, and
so the cores that rate needs, whatever else shares the machine.

The bench's own observers (the watchers polling the log and the checkpoints every
few milliseconds) connect with the application name `OBSERVER`; their backends are
counted apart (`CpuMeter.observers_s`), not as the system's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import psycopg

from bench.env import cpu_seconds

PROC = Path("/proc")
OBSERVER = "shop-bench-observer"
"""application_name of the bench's own PostgreSQL sessions that watch the system."""


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in (PROC / str(pid) / "task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:
            continue
    return found


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants."""
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending += _children(pid)
    return tree


def postgres_backends(database: str) -> list[int]:
    """Backends connected to `database` (their process title names it)."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            found.append(int(entry.name))
    return found


class CpuMeter:
    """CPU seconds used between `start` and `stop` by named groups of processes.

    Processes that appear during the measurement count from zero; those that exit
    before `stop` are lost (pooled connections and workers live through a phase).
    """

    def __init__(
        self, roots: Mapping[str, Iterable[int]], database: str, conninfo: str | None = None
    ) -> None:
        self.roots = {name: list(pids) for name, pids in roots.items()}
        self.database = database
        self.conninfo = conninfo  # to tell the bench's observer sessions apart
        self.before: dict[str, dict[int, float]] = {}
        self.used: dict[str, float] = {}
        self.observers_s = 0.0
        self._observers: set[int] = set()

    def _observer_backends(self) -> set[int]:
        if self.conninfo is None:
            return set()
        with psycopg.connect(self.conninfo, application_name=OBSERVER, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                (self.database, OBSERVER),
            ).fetchall()
        return {int(row[0]) for row in rows}

    def _groups(self) -> dict[str, dict[int, float]]:
        groups = {
            name: {pid: cpu_seconds(pid) for root in pids for pid in process_tree(root)}
            for name, pids in self.roots.items()
        }
        backends = postgres_backends(self.database)
        self._observers |= self._observer_backends()
        groups["postgres"] = {p: cpu_seconds(p) for p in backends if p not in self._observers}
        groups["observers"] = {p: cpu_seconds(p) for p in backends if p in self._observers}
        return groups

    def start(self) -> None:
        self.before = self._groups()

    def stop(self) -> dict[str, float]:
        after = self._groups()
        self.used = {
            name: round(
                sum(
                    max(0.0, now - self.before.get(name, {}).get(pid, 0.0))
                    for pid, now in pids.items()
                    if now == now  # nan: gone
                ),
                3,
            )
            for name, pids in after.items()
        }
        self.observers_s = self.used.pop("observers")
        return self.used


def cores() -> int:
    return os.cpu_count() or 1
