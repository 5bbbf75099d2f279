"""`python -m bench.report [results.json]`: the results as a Markdown table (for
docs/BENCHMARKS.md)."""

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


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "latest.json"
    print(markdown(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
