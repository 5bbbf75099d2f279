"""Bench-only prototypes of proposed production fixes, measured against the current
code in the same run (`python -m bench.prototypes`). Nothing here is used by the
application; it shows the gain a fix would bring before its owner applies it.

- gap-free reads that use the log-order index: `EventStore.read_all` orders by
  `transaction_id`, which PostgreSQL resolves to the *output* column of that name
  (`transaction_id::text::bigint`), so it cannot use `events_log_order` and sorts the
  whole table for every batch; ordering by `events.transaction_id` fixes it.
- pipelined projection writes: the same handlers and SQL as a PostgreSQL read model,
  but the statements of a batch are sent with executemany (psycopg pipelines them)
  instead of one round trip per event; all INSERTs of the batch first, then the
  UPDATEs in log order (valid where a row's INSERT precedes its UPDATEs in the log,
  as for order_detail and catalog).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from bench import eventgen
from bench.env import Processes, Servers, bench_settings, libpq, new_name
from bench.shop import Shop
from kernel.errors import CheckpointMoved
from kernel.event_store import COLUMNS, START, Checkpoint, EventStore, RecordedEvent
from kernel.subscriptions import SubscriptionRunner, read_checkpoint, store_checkpoint
from projections.projection import PostgresGeneration, PostgresProjection

_READ_ALL_FIXED = text(
    f"""
    SELECT {COLUMNS} FROM events
    WHERE (transaction_id, position) > (CAST(CAST(:tx AS text) AS xid8), :position)
      AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY events.transaction_id, events.position
    LIMIT :limit
    """
)


class IndexedReadStore(EventStore):
    """EventStore whose read_all orders by the table's columns (the proposed fix)."""

    def read_all(
        self, conn: Connection, after: Checkpoint = START, limit: int = 1000
    ) -> list[RecordedEvent]:
        params = {"tx": after.transaction_id, "position": after.position, "limit": limit}
        return [self.recorded(row) for row in conn.execute(_READ_ALL_FIXED, params)]


class _Recording:
    """Stands in for the connection inside handlers that only write."""

    def __init__(self) -> None:
        self.calls: dict[str, tuple[Any, list[dict[str, Any]]]] = {}

    def execute(self, statement: Any, params: dict[str, Any] | None = None) -> None:
        key = getattr(statement, "text", None) or str(statement)
        if key not in self.calls:
            self.calls[key] = (statement, [])
        self.calls[key][1].append(params or {})


class PipelinedGeneration(PostgresGeneration):
    """A PostgreSQL read-model generation whose batch goes out as a few executemany calls."""

    def apply(
        self, conn: Connection, events: Sequence[RecordedEvent], after: Checkpoint | None = None
    ) -> None:
        with conn.begin():
            current = read_checkpoint(conn, self.name, for_update=True)
            if after is not None and current != after:
                raise CheckpointMoved(f"{self.name} is at {current.token()}, not {after.token()}")
            fresh = [recorded for recorded in events if recorded.checkpoint > current]
            recording = _Recording()
            for recorded in fresh:
                handler = self.projection.handlers.get(recorded.type)
                if handler is not None:
                    handler(recording, self.generation, recorded.event, recorded)  # type: ignore[arg-type]
            inserts = [k for k in recording.calls if k.lstrip().upper().startswith("INSERT")]
            others = [k for k in recording.calls if k not in inserts]
            for key in inserts + others:
                statement, params = recording.calls[key]
                conn.execute(statement, params)
            if fresh:
                store_checkpoint(conn, self.name, fresh[-1].checkpoint)


def compare(events: int, name: str, variants: tuple[str, ...]) -> dict[str, Any]:
    """Rebuilds of `name` by each variant in turn (then the first again), same log,
    same process: "current", "indexed" (read_all fix), "pipelined" (+ batched writes)."""
    servers = Servers.from_env()
    db = new_name()
    try:
        url = servers.create_database(db)
        settings = dataclasses.replace(
            bench_settings(url, servers.claim_redis(), Path("/tmp")), log_level="WARNING"
        )
        shop = Shop.build(settings, Processes(Path("/tmp")))
        eventgen.copy_events(libpq(url), eventgen.Generator(shop.container.registry).events(events))
        projection = shop.container.read_side.projection(name)
        assert isinstance(projection, PostgresProjection)
        runs: list[tuple[str, float]] = []
        fixed = IndexedReadStore(shop.container.registry)
        current_runner = shop.container.runner
        fixed_runner = SubscriptionRunner(shop.container.engine, fixed, batch_size=1000)
        for generation, kind in enumerate((*variants, variants[0]), start=11):
            subscriber = (
                PipelinedGeneration(projection, generation)
                if kind == "pipelined"
                else projection.subscriber(generation)
            )
            runner = current_runner if kind == "current" else fixed_runner
            began = time.monotonic()
            report = runner.run(subscriber)
            seconds = time.monotonic() - began
            if report.error:
                raise RuntimeError(report.error)
            runs.append((kind, report.applied / seconds))
        shop.close()
        return {"read_model": name, "events": events, "runs": runs}
    finally:
        servers.drop_databases()
        servers.release_redis()


def appends_without_preping(writers: int, rounds: int, seconds: float) -> dict[str, float]:
    """Event appends through the container's engine vs one without pool_pre_ping."""
    from bench.appends import interleaved

    servers = Servers.from_env()
    db = new_name()
    try:
        url = servers.create_database(db + "_append")
        es_url = servers.create_database(db + "_es", migrated=False)
        modes = ("raw", "store", "store_no_preping")
        rates, _, _ = interleaved(url, es_url, writers, rounds, seconds, modes)
        return rates
    finally:
        servers.drop_databases()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.prototypes")
    parser.add_argument("what", choices=["projection", "appends"])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--read-model", default="order_detail")
    parser.add_argument("--variants", default="current,indexed,pipelined")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4)
    args = parser.parse_args()
    if args.what == "appends":
        for mode, rate in appends_without_preping(16, args.rounds, args.seconds).items():
            print(f"append {mode:<18} {rate:>10,.0f} events/s")
        return
    found = compare(args.events, args.read_model, tuple(args.variants.split(",")))
    for kind, rate in found["runs"]:
        print(f"{found['read_model']:<14} {kind:<10} {rate:>10,.0f} events/s")


if __name__ == "__main__":
    main()
