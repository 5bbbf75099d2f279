"""`python -m bench.report [--details] [results.json]`: the results as a Markdown table
(for docs/BENCHMARKS.md); with `--details`, also a line per metric with what its details
say most (percentiles, CPU per order by process, orders never confirmed, ...)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.results import RESULTS


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def markdown(document: dict[str, Any]) -> str:
    machine = document["machine"]
    lines = [
        f"Run: {document['mode']}, {document['started_at']}, {document['duration_s']:.0f} s;"
        f" {machine['cpus']} CPUs, {machine['memory']}, Python {machine['python']},"
        f" PostgreSQL {machine['postgres']}, Redis {machine['redis']};"
        f" load average at start {machine['loadavg_at_start']},"
        f" at end {machine.get('loadavg_at_end')}.",
        "",
        "| metric | value | unit | baseline (same run) | ratio | goal | met |",
        "| --- | ---: | --- | --- | ---: | --- | --- |",
    ]
    for metric in document["metrics"]:
        baseline = metric.get("baseline")
        base = f"{baseline['name']}: {_fmt(baseline['value'])}" if baseline else "-"
        value = metric["value"]
        lines.append(
            f"| {metric['name']} | {_fmt(value) if value is not None else 'never (inf)'}"
            f" | {metric['unit']} | {base} | {_fmt(metric['ratio'])} | {metric['goal']}"
            f" | {'yes' if metric['met'] else '**no**'} |"
        )
    return "\n".join(lines)


KEYS = (
    "p50_ms", "p90_ms", "p99_ms", "max_ms", "orders", "not_confirmed_within_drain",
    "unconfirmed", "never_visible", "never_confirmed", "stale_answers", "longest_gap_s",
    "unconfirmed_all", "seconds", "confirmed", "seconds_by_partition", "victim_partitions",
    "seconds_until_moved", "longest_growth_after_warmup_mb", "longest_running_s",
    "placed_while_frozen_in_its_saga_partitions", "placed_while_frozen_in_other_saga_partitions",
    "other_partitions_waited_over_3_s", "victim_sessions_1s_after_stop", "waited_over_3_s",
    "cluster_xmin_held_back_by_it", "foreign_session_at_end", "confirmed_by_second",
)  # fmt: skip


def details(document: dict[str, Any]) -> str:
    lines = []
    for metric in document["metrics"]:
        found = metric.get("details") or {}
        parts = [f"{key} {_fmt(found[key])}" for key in KEYS if key in found]
        cpu = found.get("cpu") if "cpu_ms_per_order" not in found else found
        if isinstance(cpu, dict) and "cpu_ms_per_order" in cpu:
            split = ", ".join(f"{k} {_fmt(v)}" for k, v in cpu["cpu_ms_per_order"].items())
            parts.append(f"cpu ms/order {_fmt(cpu['cpu_ms_per_order_total'])} ({split})")
        waits = found.get("postgres_sessions_by_wait")
        if isinstance(waits, dict):
            parts.append(f"sessions {waits.get('average_sessions')}")
            if waits.get("stream_locks_waited_for"):
                parts.append(f"stream locks waited for {waits['stream_locks_waited_for']}")
        for trial in found.get("trials", []) if isinstance(found.get("trials"), list) else []:
            parts.append(f"trial {trial}")
        lines.append(f"- {metric['name']}: " + "; ".join(parts))
    return "\n".join(lines)


def main() -> None:
    args = [arg for arg in sys.argv[1:] if arg != "--details"]
    path = Path(args[0]) if args else RESULTS / "latest.json"
    document = json.loads(path.read_text())
    print(markdown(document))
    if "--details" in sys.argv[1:]:
        print()
        print(details(document))


if __name__ == "__main__":
    main()
