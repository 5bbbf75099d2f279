"""CPU time the system under test spends during a measurement, per component.

A latency goal at a fixed rate can only hold if the system needs fewer CPU-seconds
per second at that rate than the machine has cores. Summing the CPU time of the
API's gunicorn processes, the rq workers and the PostgreSQL backends serving the
bench's database (from /proc) over a load gives CPU-milliseconds per order, and
so the cores that rate needs, whatever else shares the machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from bench.env import cpu_seconds

PROC = Path("/proc")


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

    def __init__(self, roots: Mapping[str, Iterable[int]], database: str) -> None:
        self.roots = {name: list(pids) for name, pids in roots.items()}
        self.database = database
        self.before: dict[str, dict[int, float]] = {}
        self.used: dict[str, float] = {}

    def _groups(self) -> dict[str, dict[int, float]]:
        groups = {
            name: {pid: cpu_seconds(pid) for root in pids for pid in process_tree(root)}
            for name, pids in self.roots.items()
        }
        groups["postgres"] = {pid: cpu_seconds(pid) for pid in postgres_backends(self.database)}
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
        return self.used


def cores() -> int:
    return os.cpu_count() or 1
