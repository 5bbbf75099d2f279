"""In-process profiles of the paths the benchmarks time (`python -m bench.profile`).

Each profile runs the production code in this process against a fresh `bench_*`
database, prints its rate and writes a pyinstrument report to
`bench/results/profile-<what>.txt`. They are how the fixes in docs/BENCHMARKS.md
were found; run one again to see where a path spends its time now.

- `rebuild --read-model NAME`: a runner drains a new generation of a PostgreSQL
  read model over the generated log, as a rebuild job does.
- `post`: `POST /api/orders` through the whole Flask app (the WSGI app gunicorn
  serves, driven by its test client), no worker running.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyinstrument import Profiler

from bench import eventgen
from bench.env import Processes, Servers, bench_settings, libpq, new_name
from bench.shop import PASSWORD, Shop, order_body
from config.flask_app import create_app

RESULTS = Path(__file__).parent / "results"


@contextmanager
def _shop() -> Iterator[Shop]:
    """The shop on a fresh `bench_*` database and a claimed Redis database, dropped after."""
    servers = Servers.from_env()
    try:
        url = servers.create_database(new_name())
        settings = dataclasses.replace(
            bench_settings(url, servers.claim_redis(), Path("/tmp")), log_level="WARNING"
        )
        shop = Shop.build(settings, Processes(Path("/tmp")))
        try:
            yield shop
        finally:
            shop.close()
    finally:
        servers.drop_databases()
        servers.release_redis()


def rebuild(read_model: str, events: int) -> tuple[float, str]:
    """(events/s, profile text) of draining `read_model` from the start of the log."""
    with _shop() as shop:
        registry = shop.application.registry
        url = libpq(shop.settings.require()[0])
        eventgen.copy_events(url, eventgen.Generator(registry).events(events))
        subscriber = shop.application.read_side.projection(read_model).subscriber(99)
        profiler = Profiler(interval=0.0005)
        began = time.monotonic()
        with profiler:
            report = shop.application.runner.run(subscriber)
        seconds = time.monotonic() - began
    if report.error:
        raise RuntimeError(report.error)
    return report.applied / seconds, profiler.output_text(unicode=True, show_all=False)


def post(orders: int) -> tuple[float, str]:
    """(requests/s, profile text) of placing `orders` orders through the API."""
    with _shop() as shop:
        shop.seed_products()
        client = create_app(shop.application).test_client()
        customer = client.post(
            "/api/customers", json={"email": "p@example.com", "name": "P", "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {customer.get_json()['token']}"}
        body = order_body()
        for _ in range(20):  # warm up: pools, caches, first-request setup
            client.post("/api/orders", json=body, headers=headers)
        profiler = Profiler(interval=0.0005)
        began = time.monotonic()
        with profiler:
            for _ in range(orders):
                answer = client.post("/api/orders", json=body, headers=headers)
                if answer.status_code != 202:
                    raise RuntimeError(answer.get_json())
        seconds = time.monotonic() - began
    return orders / seconds, profiler.output_text(unicode=True, show_all=False)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("what", choices=["rebuild", "post"])
    parser.add_argument("--read-model", default="order_detail")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=500)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if args.what == "post":
        rate, profile = post(args.orders)
        out = RESULTS / "profile-post.txt"
        print(f"POST /api/orders: {rate:,.0f} requests/s (under the profiler); profile in {out}")
    else:
        rate, profile = rebuild(args.read_model, args.events)
        out = RESULTS / f"profile-rebuild-{args.read_model}.txt"
        print(f"{args.read_model}: {rate:,.0f} events/s (under the profiler); profile in {out}")
    out.write_text(profile)


if __name__ == "__main__":
    main()
