"""In-process profiles of the paths the benchmarks time (`python -m bench.profile`).

Each profile runs the production code in this process against a fresh `bench_*`
database, prints its rate and writes a pyinstrument report to
`bench/results/profile-<what>.txt`. They are how the fixes in docs/BENCHMARKS.md
were found; run one again to see where a path spends its time now.

- `rebuild --read-model NAME`: a runner drains a new generation of a PostgreSQL
  read model over the generated log, as a rebuild job does.
- `post`: `POST /api/orders` through the whole Flask app (the WSGI app gunicorn
  serves, driven by its test client), no worker running.
- `get`: `GET /api/orders` and `GET /api/orders/{id}` in turn, the same way, over
  orders the read models hold.
- `reserve`: `ReserveInventory` of one unit of one SKU through the command bus, one
  client (the hot-SKU phase's command, without its contention).
- `append`: `EventStore.append` of one OrderPlaced in `engine.begin()`, five per stream
  (the appends phase's store writer).

Each also prints the CPU spent per unit by this process (`time.process_time`) and by
the database's PostgreSQL backends (`/proc`), over a pass without the profiler.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from flask.testing import FlaskClient
from pyinstrument import Profiler
from sqlalchemy import make_url

from bench import eventgen
from bench.appends import sample_event
from bench.cpu import postgres_backends
from bench.env import Processes, Servers, bench_settings, cpu_seconds, libpq, new_name
from bench.shop import PASSWORD, Shop, order_body
from config.flask_app import create_app
from config.jobs import Jobs
from config.queues import EVERY_SUBSCRIPTION
from inventory.commands import ReservationLine, ReserveInventory
from kernel.messages import Metadata

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


def _customer_client(shop: Shop) -> tuple[FlaskClient, dict[str, str]]:
    """A test client of the shop's API (products seeded) and a new customer's headers."""
    shop.seed_products()
    client = create_app(shop.application).test_client()
    customer = client.post(
        "/api/customers", json={"email": "p@example.com", "name": "P", "password": PASSWORD}
    )
    return client, {"Authorization": f"Bearer {customer.get_json()['token']}"}


def post(orders: int) -> tuple[float, str]:
    """(requests/s, profile text) of placing `orders` orders through the API."""
    with _shop() as shop:
        client, headers = _customer_client(shop)
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


def get(requests: int) -> tuple[float, str]:
    """(requests/s, profile text) of reading a customer's order list and one order."""
    with _shop() as shop:
        client, headers = _customer_client(shop)
        placed = [
            client.post("/api/orders", json=order_body(), headers=headers).get_json()
            for _ in range(5)
        ]
        Jobs(shop.application).catch_up(EVERY_SUBSCRIPTION)
        paths = ["/api/orders", f"/api/orders/{placed[0]['order_id']}"]
        for path in paths * 20:  # warm up
            client.get(path, headers=headers)
        profiler = Profiler(interval=0.0005)
        began = time.monotonic()
        with profiler:
            for index in range(requests):
                answer = client.get(paths[index % 2], headers=headers)
                if answer.status_code != 200:
                    raise RuntimeError(answer.get_json())
        seconds = time.monotonic() - began
    return requests / seconds, profiler.output_text(unicode=True, show_all=False)


@dataclasses.dataclass(frozen=True)
class Timed:
    rate: float  # units/s under the profiler
    client_ms: float  # this process's CPU per unit, without the profiler
    postgres_ms: float  # the database's backends' CPU per unit, in the same pass
    profile: str


def _timed(shop: Shop, units: int, one: Callable[[int], None]) -> Timed:
    """`one(i)` run `units` // 10 times to warm up, `units` times for the CPU per unit,
    then `units` times under the profiler."""
    for index in range(units // 10):
        one(index)
    backends = postgres_backends(make_url(shop.settings.require()[0]).database or "")
    postgres = sum(cpu_seconds(pid) for pid in backends)
    began = time.process_time()
    for index in range(units):
        one(units + index)
    client_ms = (time.process_time() - began) * 1000 / units
    postgres_ms = (sum(cpu_seconds(pid) for pid in backends) - postgres) * 1000 / units
    profiler = Profiler(interval=0.0005)
    began = time.monotonic()
    with profiler:
        for index in range(units):
            one(2 * units + index)
    rate = units / (time.monotonic() - began)
    return Timed(rate, client_ms, postgres_ms, profiler.output_text(unicode=True, show_all=False))


def reserve(units: int) -> Timed:
    """Reservations of one unit of one SKU, one client, through the command bus."""
    with _shop() as shop:
        shop.add_product("HOT", "Hot item", 999, 10**9)
        bus = shop.application.bus

        def one(_: int) -> None:
            command = ReserveInventory(str(uuid.uuid4()), (ReservationLine("HOT", 1),))
            if not bus.dispatch(command, Metadata(actor="bench")).ok:
                raise RuntimeError("a reservation failed")

        return _timed(shop, units, one)


def append(units: int) -> Timed:
    """Appends of one OrderPlaced per transaction, five per stream."""
    with _shop() as shop:
        application, event, run = shop.application, sample_event(), uuid.uuid4().hex[:8]

        def one(index: int) -> None:
            with application.engine.begin() as conn:
                application.store.append(
                    conn,
                    stream_id=f"order-{run}-{index // 5}",
                    stream_type="order",
                    expected_version=index % 5,
                    events=[(event, Metadata(actor="bench"))],
                )

        return _timed(shop, units, one)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("what", choices=["rebuild", "post", "get", "reserve", "append"])
    parser.add_argument("--read-model", default="order_detail")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--units", type=int, default=2000, help="reserve, append: per pass")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if args.what in ("reserve", "append"):
        timed = (reserve if args.what == "reserve" else append)(args.units)
        out, profile = RESULTS / f"profile-{args.what}.txt", timed.profile
        print(
            f"{args.what}: CPU per unit without the profiler {timed.client_ms:.3f} ms in this"
            f" process, {timed.postgres_ms:.3f} ms in PostgreSQL; {timed.rate:,.0f}/s under"
            f" the profiler; profile in {out}"
        )
    elif args.what == "get":
        rate, profile = get(args.requests)
        out = RESULTS / "profile-get.txt"
        print(f"GET /api/orders[/id]: {rate:,.0f} requests/s (profiled); profile in {out}")
    elif args.what == "post":
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
