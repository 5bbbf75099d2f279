"""Event appends, one event per transaction, from concurrent writer processes.

Three writers take turns, round by round, against the same PostgreSQL server:
- raw: psycopg `INSERT` of the same row into the same `events` table, then COMMIT;
- store: the project's `EventStore.append` in `engine.begin()` (expected-version
  check, RETURNING position and transaction id);
- eventsourcing: the library's `Application.save` of an aggregate with one new event.
Every writer appends five events per stream (versions 1-5), an OrderPlaced payload.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import time
import uuid
from multiprocessing.connection import Connection as Pipe
from typing import Any

import psycopg

from bench.env import NO_STRIPE, STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET, libpq
from bench.results import Baseline, Metric
from bench.stats import percentile
from kernel.partitions import slot_of

MODES = ("raw", "store", "eventsourcing")
RAW_INSERT = (
    "INSERT INTO events (stream_id, stream_type, version, type, schema_version, data, metadata,"
    " partition_key, slot) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s)"
)


def sample_event() -> Any:
    from kernel.money import Money
    from orders.events import Address, OrderPlaced, PricedLine

    def eur(amount: int) -> Money:
        return Money(amount, "EUR")

    lines = (
        PricedLine(
            "BENCH-MUG", "Stoneware mug", 2, eur(1200), eur(2400), eur(0), eur(0), eur(2400)
        ),
        PricedLine(
            "BENCH-TEE", "Black T-shirt, M", 1, eur(2500), eur(2500), eur(0), eur(0), eur(2500)
        ),
    )
    address = Address("Ada Lovelace", "1 Main St", "London", "N1 1AA", "GB")
    return OrderPlaced(
        str(uuid.uuid4()), str(uuid.uuid4()), lines, Money(4900, "EUR"), Money(499, "EUR"),
        Money(5399, "EUR"), address, "pm_card_visa", (), eur(0), (), eur(0), address,
    )  # fmt: skip


class _Writers:
    """One writer of each kind in a process; `append(mode)` does one transaction."""

    def __init__(self, index: int, url: str, es_url: str) -> None:
        from config.bootstrap import bootstrap
        from config.settings import Settings
        from kernel.messages import Metadata

        self.index = index
        self.metadata_type = Metadata
        self.event = sample_event()
        settings = Settings(
            database_url=url,
            redis_url="redis://127.0.0.1:6379/0",
            admin_token="x",
            secret_key="x",
            stripe_api_key=STRIPE_API_KEY,  # required by bootstrap; no provider is called
            stripe_api_base=NO_STRIPE,
            stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
        )
        self.application = bootstrap(settings)
        self.registry = self.application.registry
        self.raw = psycopg.connect(libpq(url))
        from bench.peer import PeerWriter

        type_name, _, data = self.registry.encode(self.event)
        self.type_name = type_name
        self.peer = PeerWriter(es_url, data)
        self.count = {mode: 0 for mode in MODES}
        self.run = uuid.uuid4().hex[:8]

    def _stream(self, mode: str) -> tuple[str, int]:
        """Five events per stream: (stream id, expected version)."""
        n = self.count[mode]
        return f"order-{mode}-{self.run}-{self.index}-{n // 5}", n % 5

    def append(self, mode: str) -> None:
        if mode == "raw":
            stream, version = self._stream(mode)
            type_name, schema_version, data = self.registry.encode(self.event)
            metadata = self.metadata_type(actor="bench").to_json()
            key = data["order_id"]
            self.raw.execute(
                RAW_INSERT,
                (stream, "order", version + 1, type_name, schema_version,
                 json.dumps(data), json.dumps(metadata), key, slot_of(key)),
            )  # fmt: skip
            self.raw.commit()
        elif mode == "store":
            stream, version = self._stream(mode)
            with self.application.engine.begin() as conn:
                self.application.store.append(
                    conn,
                    stream_id=stream,
                    stream_type="order",
                    expected_version=version,
                    events=[(self.event, self.metadata_type(actor="bench"))],
                )
        else:
            self.peer.append_one()
        self.count[mode] += 1

    def close(self) -> None:
        self.raw.close()
        self.peer.close()
        self.application.close()


def _writer(index: int, url: str, es_url: str, pipe: Pipe) -> None:
    writers = _Writers(index, url, es_url)
    pipe.send("ready")
    while True:
        order = pipe.recv()
        if order is None:
            break
        mode, start_at, end_at = order
        while time.monotonic() < start_at:
            time.sleep(0.001)
        done = 0
        latencies = []
        while True:
            began = time.monotonic()
            if began >= end_at:
                break
            writers.append(mode)
            latencies.append(time.monotonic() - began)
            done += 1
        pipe.send((done, latencies[::5]))
    writers.close()


def interleaved(
    url: str,
    es_url: str,
    writers: int,
    rounds: int,
    seconds: float,
    modes: tuple[str, ...] = MODES,
) -> tuple[dict[str, float], dict[str, list[float]], dict[str, list[float]]]:
    """Rates per mode (events/s), per-round rates and sampled latencies, modes taking
    turns round by round (the order rotates) with all writers on one mode at a time."""
    from bench.peer import create_append_tables

    create_append_tables(es_url)
    context = multiprocessing.get_context("fork")
    pipes = []
    children = []
    for index in range(writers):
        parent, child = context.Pipe()
        process = context.Process(target=_writer, args=(index, url, es_url, child), daemon=True)
        process.start()
        pipes.append(parent)
        children.append(process)
    for pipe in pipes:
        if pipe.recv() != "ready":
            raise RuntimeError("a writer did not start")
    totals = {mode: 0 for mode in modes}
    elapsed = {mode: 0.0 for mode in modes}
    latencies: dict[str, list[float]] = {mode: [] for mode in modes}
    per_round: dict[str, list[float]] = {mode: [] for mode in modes}
    try:
        for index in range(rounds):
            shift = index % len(modes)
            order = modes[shift:] + modes[:shift]
            for mode in order:
                start_at = time.monotonic() + 0.2
                for pipe in pipes:
                    pipe.send((mode, start_at, start_at + seconds))
                done = 0
                for pipe in pipes:
                    count, sampled = pipe.recv()
                    done += count
                    latencies[mode] += sampled
                totals[mode] += done
                elapsed[mode] += seconds
                per_round[mode].append(done / seconds)
    finally:
        for pipe in pipes:
            pipe.send(None)
        for process in children:
            process.join(timeout=30)
    return {mode: totals[mode] / elapsed[mode] for mode in modes}, per_round, latencies


def appends(url: str, es_url: str, writers: int, rounds: int, seconds: float) -> list[Metric]:
    rate, per_round, latencies = interleaved(url, es_url, writers, rounds, seconds)
    parameters = {
        "writers": writers,
        "rounds": rounds,
        "seconds_per_round": seconds,
        "events_per_transaction": 1,
        "events_per_stream": 5,
        "payload": "OrderPlaced with 2 lines (~700 bytes of JSON)",
        "per_round_events_per_s": {m: [round(r) for r in v] for m, v in per_round.items()},
    }
    details = {
        mode: {
            "events_per_s": round(rate[mode], 1),
            "p50_ms": round(percentile(latencies[mode], 50) * 1000, 2),
            "p99_ms": round(percentile(latencies[mode], 99) * 1000, 2),
        }
        for mode in MODES
    }
    raw_ratio = rate["store"] / rate["raw"] if rate["raw"] else math.nan
    peer_ratio = rate["store"] / rate["eventsourcing"] if rate["eventsourcing"] else math.nan
    return [
        Metric(
            f"event append, 1 event/transaction, {writers} writers",
            rate["store"],
            "events/s",
            ">= 0.6 x raw INSERT",
            raw_ratio >= 0.6,
            Baseline("raw psycopg INSERT + COMMIT", rate["raw"]),
            raw_ratio,
            parameters,
            details,
        ),
        Metric(
            f"event append vs eventsourcing, {writers} writers",
            rate["store"],
            "events/s",
            ">= 2 x eventsourcing",
            peer_ratio >= 2,
            Baseline("eventsourcing 9.5 Application.save", rate["eventsourcing"]),
            peer_ratio,
            parameters,
            details,
        ),
    ]
