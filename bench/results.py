"""Metric records, the results file and the table printed at the end of a run."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Baseline:
    name: str
    value: float


@dataclass
class Metric:
    """One measured figure, its in-run baseline (if any) and its goal.

    `ratio` is value / baseline (or baseline / value when `lower_is_better`, so a
    ratio above 1 always means "better than the baseline").
    """

    name: str
    value: float
    unit: str
    goal: str
    met: bool
    baseline: Baseline | None = None
    ratio: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self, machine: dict[str, Any]) -> dict[str, Any]:
        data = asdict(self)
        data["value"] = _finite(self.value)
        data["ratio"] = _finite(self.ratio)
        data["machine"] = machine
        return data


def _finite(value: float | None) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(value, 4)


def loadavg() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def machine_description(postgres: str, redis: str) -> dict[str, Any]:
    memory_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "memory": f"{memory_kb / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "postgres": postgres,
        "redis": redis,
        "kernel": platform.release(),
        "loadavg_at_start": loadavg(),
    }


def write(
    metrics: list[Metric],
    machine: dict[str, Any],
    mode: str,
    started: float,
    path: Path,
    sizes: dict[str, Any] | None = None,
) -> None:
    machine = {**machine, "loadavg_at_end": loadavg()}
    document = {
        "mode": mode,
        "sizes": sizes or {},
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": machine,
        "metrics": [metric.as_json(machine) for metric in metrics],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def _fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(metrics: list[Metric]) -> str:
    rows = [("metric", "value", "unit", "baseline", "ratio", "goal", "met")]
    for metric in metrics:
        baseline = (
            f"{metric.baseline.name} {_fmt(metric.baseline.value)}" if metric.baseline else "-"
        )
        rows.append(
            (
                metric.name,
                _fmt(metric.value),
                metric.unit,
                baseline,
                _fmt(metric.ratio),
                metric.goal,
                "yes" if metric.met else "NO",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)
