"""In-process profiles of the paths the benchmarks time (`python -m bench.profile`).

Each profile runs the production code in this process against a fresh `bench_*`
database, prints its rate and writes a pyinstrument report to
`bench/results/profile-<what>.txt`. They are how the fixes in docs/BENCHMARKS.md
were found; run one again to see where a path spends its time now.

- `rebuild --read-model NAME`: a runner drains a new generation of a PostgreSQL
  read model over the generated log, as a rebuild job does.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from pyinstrument import Profiler

from bench import eventgen
from bench.env import Processes, Servers, bench_settings, libpq, new_name
from bench.shop import Shop

RESULTS = Path(__file__).parent / "results"


def rebuild(read_model: str, events: int) -> tuple[float, str]:
    """(events/s, profile text) of draining `read_model` from the start of the log."""
    servers = Servers.from_env()
    try:
        url = servers.create_database(new_name())
        settings = dataclasses.replace(
            bench_settings(url, servers.claim_redis(), Path("/tmp")), log_level="WARNING"
        )
        shop = Shop.build(settings, Processes(Path("/tmp")))
        registry = shop.container.registry
        eventgen.copy_events(libpq(url), eventgen.Generator(registry).events(events))
        subscriber = shop.container.read_side.projection(read_model).subscriber(99)
        profiler = Profiler(interval=0.0005)
        began = time.monotonic()
        with profiler:
            report = shop.container.runner.run(subscriber)
        seconds = time.monotonic() - began
        shop.close()
        if report.error:
            raise RuntimeError(report.error)
        return report.applied / seconds, profiler.output_text(unicode=True, show_all=False)
    finally:
        servers.drop_databases()
        servers.release_redis()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("what", choices=["rebuild"])
    parser.add_argument("--read-model", default="order_detail")
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    rate, profile = rebuild(args.read_model, args.events)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"profile-rebuild-{args.read_model}.txt"
    out.write_text(profile)
    print(f"{args.read_model}: {rate:,.0f} events/s (under the profiler); profile in {out}")


if __name__ == "__main__":
    main()
