"""Driving the load generator process and summarising what it saw."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from typing import Any

from bench.env import ROOT
from bench.stats import percentile


@dataclass
class LoadResult:
    records: list[tuple[float, float, int, dict[str, Any]]]
    measured_s: float
    sent: int
    cpu_s: float

    @property
    def ok(self) -> list[tuple[float, float, int, dict[str, Any]]]:
        return [record for record in self.records if 200 <= record[2] < 300]

    @property
    def errors(self) -> int:
        return len(self.records) - len(self.ok)

    @property
    def statuses(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for record in self.records:
            found[str(record[2])] = found.get(str(record[2]), 0) + 1
        return found

    def latencies(self) -> list[float]:
        return [end - start for start, end, _, _ in self.ok]

    @property
    def rate(self) -> float:
        """Successful requests per measured second (closed loop: the throughput)."""
        return len(self.ok) / self.measured_s if self.measured_s else 0.0

    @property
    def completed_rate(self) -> float:
        """Successful requests per second from the first start to the last answer
        (open loop: below the offered rate when the server cannot keep up)."""
        ok = self.ok
        if not ok:
            return 0.0
        span = max(end for _, end, _, _ in ok) - min(start for start, _, _, _ in ok)
        return len(ok) / span if span > 0 else 0.0


TIMEOUT = 30.0
"""Seconds a request may take before it counts as failed (the quick run lowers it)."""


class Load:
    """A running load generator; `wait()` returns its result."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(spec).encode())
        self.process.stdin.close()

    def wait(self) -> LoadResult:
        assert self.process.stdout is not None
        raw = self.process.stdout.read()
        if self.process.wait() != 0:
            raise RuntimeError(f"the load generator failed with {self.process.returncode}")
        found = json.loads(raw)
        return LoadResult(
            [(r[0], r[1], r[2], r[3]) for r in found["records"]],
            found["measured_s"],
            found["sent"],
            found["cpu_s"],
        )


def spec(
    base_url: str,
    requests: list[dict[str, Any]],
    *,
    mode: str,
    duration: float,
    rate: float = 0.0,
    concurrency: int = 8,
    warmup: float = 0.0,
    fields: tuple[str, ...] = (),
    timeout: float | None = None,
) -> dict[str, Any]:
    url = urllib.parse.urlsplit(base_url)
    return {
        "host": url.hostname,
        "port": url.port,
        "mode": mode,
        "duration": duration,
        "rate": rate,
        "concurrency": concurrency,
        "warmup": warmup,
        "requests": requests,
        "fields": list(fields),
        "timeout": TIMEOUT if timeout is None else timeout,
    }


def run(load_spec: dict[str, Any]) -> LoadResult:
    return Load(load_spec).wait()


def summary(result: LoadResult) -> dict[str, Any]:
    latencies = result.latencies()
    return {
        "requests_per_s": round(result.rate, 1),
        "completed_per_s": round(result.completed_rate, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "ok": len(result.ok),
        "errors": result.errors,
        "statuses": result.statuses,
        "loadgen_cpu_s": result.cpu_s,
    }
