"""Partitioned subscriptions: the slot SQL and Python agree on, racing runners over many
partitions applying each event once and each partition in log order, leases that fence
a holder off once lost, and a horizon that waits only for event-store writers."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from config.bootstrap import Application
from kernel.errors import Fenced
from kernel.event_store import EventStore
from kernel.horizon import declare_writer, horizon, running_writers
from kernel.leases import Held, Lease, Leases
from kernel.messages import Metadata
from kernel.partitions import SLOTS, partition_of, slot_of
from kernel.subscriptions import SubscriptionRunner
from tests.integration.kernel.test_subscriptions import (
    AppliedLog,
    _append_counts,
    _applied,
    _create_applied_log,
)
from tests.support.tally import Counted

WRITERS = 16
EVENTS_PER_WRITER = 400
PARTITIONS = 4


def test_python_and_sql_put_a_key_in_the_same_slot(application: Application) -> None:
    keys = [str(uuid.uuid4()) for _ in range(2000)] + ["stock_item-MUG-1", "", "ü-ß"]
    with application.engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT (('x' || substr(md5(k), 1, 8))::bit(32)::int & 2147483647) % 64"
                " FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS t(k, n) ORDER BY n"
            ),
            {"keys": keys},
        ).scalars()
        assert list(found) == [slot_of(key) for key in keys]
    assert len({slot_of(key) for key in keys}) == SLOTS  # and they spread over every slot


def test_racing_runners_apply_each_event_once_and_each_partition_in_log_order(
    application: Application, store: EventStore
) -> None:
    """16 writers commit out of position order while four runners race over four
    partitions: every event is applied once, and each partition in log order."""
    _create_applied_log(application)
    subscriber = AppliedLog("applied-partitioned")
    runners = [
        SubscriptionRunner(application.engine, store, batch_size=50, partitions=PARTITIONS)
        for _ in range(4)
    ]
    writers_done = threading.Event()

    def writer(n: int) -> None:
        rng = random.Random(n)
        with application.engine.connect() as conn:
            for version in range(EVENTS_PER_WRITER):
                with conn.begin():
                    store.append(
                        conn, stream_id=f"writer-{n}", stream_type="tally",
                        expected_version=version, events=[(Counted(version), Metadata())],
                    )  # fmt: skip
                    time.sleep(rng.uniform(0, 0.002))

    def follow(runner: SubscriptionRunner, seed: int) -> None:
        rng = random.Random(seed)
        while not writers_done.is_set():
            runner.run(subscriber, partition=rng.randrange(PARTITIONS))
            time.sleep(0.002)

    followers = [
        threading.Thread(target=follow, args=(runner, n)) for n, runner in enumerate(runners)
    ]
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in followers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    writers_done.set()
    for thread in followers:
        thread.join()
    runners[0].run(subscriber)

    applied = _applied(application)
    assert len(applied) == WRITERS * EVENTS_PER_WRITER
    assert len(set(applied)) == len(applied)
    slots = _slots(application)
    by_partition: dict[int, list[int]] = defaultdict(list)
    for position in applied:
        by_partition[partition_of(slots[position], PARTITIONS)].append(position)
    for partition, positions in by_partition.items():
        assert positions == _log_order_of(application, partition), partition
    assert len(by_partition) == PARTITIONS
    (status,) = runners[1].status([subscriber])
    assert status.lag_events == 0 and len(status.partitions) == PARTITIONS


def test_a_lost_lease_fences_its_old_holder_off(
    application: Application, store: EventStore
) -> None:
    _create_applied_log(application)
    _append_counts(application, store, "t-1", 4)
    subscriber = AppliedLog("applied-fenced")
    first, second = Leases("first", 0.2), Leases("second", 30)
    with application.engine.begin() as conn:
        assert first.partitions(conn, subscriber.name, 1) == 1
        old = first.take(conn, subscriber.name, 0)
        taken_again = second.take(conn, subscriber.name, 0)
    assert isinstance(old, Lease)
    assert isinstance(taken_again, Held)  # still held: the taker marked it wanted

    time.sleep(0.3)  # the first holder froze past its lease
    with application.engine.begin() as conn:
        new = second.take(conn, subscriber.name, 0)
    assert isinstance(new, Lease) and new.fence > old.fence

    with application.engine.connect() as conn:
        with conn.begin():
            batch = store.read_all(conn)
        with pytest.raises(Fenced):
            subscriber.apply(conn, batch, old)
        assert _applied(application) == []  # nothing the stale holder wrote committed
        subscriber.apply(conn, batch, new)
    assert len(_applied(application)) == 4


def test_a_holder_lets_go_only_once_nobody_wants_the_partition(
    application: Application,
) -> None:
    holder, other = Leases("holder", 30), Leases("other", 30)
    with application.engine.begin() as conn:
        holder.partitions(conn, "wanted-test", 2)
        lease = holder.take(conn, "wanted-test", 1)
        assert isinstance(lease, Lease)
        assert isinstance(other.take(conn, "wanted-test", 1), Held)
        assert holder.release(conn, lease) is True  # wanted meanwhile: drain again
        assert holder.release(conn, lease) is False  # now let go
        assert isinstance(other.take(conn, "wanted-test", 1), Lease)


@pytest.fixture
def foreign_database(application: Application) -> Iterator[str]:
    """Another database on the same server: its transactions are not the shop's."""
    url = make_url(application.settings.require()[0])
    name = f"{url.database}_foreign_{uuid.uuid4().hex[:6]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_readers_pass_a_foreign_writer_but_wait_for_an_event_store_writer(
    application: Application, store: EventStore, foreign_database: str
) -> None:
    _append_counts(application, store, "t-1", 3)
    with psycopg.connect(foreign_database) as foreign:  # writes, then idles in transaction
        foreign.execute("CREATE TABLE busy (n int)")
        foreign.execute("INSERT INTO busy VALUES (1)")
        _append_counts(application, store, "t-2", 2)
        with application.engine.connect() as conn, conn.begin():
            assert len(store.read_all(conn)) == 5, "a foreign transaction held readers back"

        with application.engine.connect() as writer, writer.begin():
            declare_writer(writer)
            writer.execute(text("SELECT pg_current_xact_id()"))  # running, with an id
            _append_counts(application, store, "t-3", 2)  # committed after it began
            with application.engine.connect() as conn, conn.begin():
                assert len(store.read_all(conn)) == 5  # held back behind the open writer
                (named,) = running_writers(conn)
                assert named.pid == writer.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
        with application.engine.connect() as conn, conn.begin():
            assert len(store.read_all(conn)) == 7
            assert running_writers(conn) == []


def test_a_transaction_that_wrote_before_declaring_may_not_append(
    application: Application, store: EventStore
) -> None:
    with application.engine.connect() as conn, conn.begin():
        conn.execute(text("CREATE TEMP TABLE scratch (n int)"))
        conn.execute(text("INSERT INTO scratch VALUES (1)"))
        with pytest.raises(RuntimeError, match="declare"):
            store.append(
                conn,
                stream_id="late",
                stream_type="tally",
                expected_version=0,
                events=[(Counted(1), Metadata())],
            )


def test_the_horizon_is_the_next_id_when_no_event_store_writer_runs(
    application: Application,
) -> None:
    with application.engine.connect() as conn, conn.begin():
        bound = horizon(conn)
        xmax = conn.execute(text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"))
        assert bound <= xmax.scalar_one()


def _slots(application: Application) -> dict[int, int]:
    with application.engine.connect() as conn:
        return {p: s for p, s in conn.execute(text("SELECT position, slot FROM events"))}


def _log_order_of(application: Application, partition: int) -> list[int]:
    with application.engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT position FROM events WHERE slot % :n = :p"
                    " ORDER BY transaction_id, position"
                ),
                {"n": PARTITIONS, "p": partition},
            ).scalars()
        )
