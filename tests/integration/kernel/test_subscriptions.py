from __future__ import annotations

import random
import threading
import time

from sqlalchemy import Connection, text

from config.bootstrap import Application
from kernel import horizon
from kernel.event_store import EventStore, RecordedEvent
from kernel.messages import Event, Metadata
from kernel.subscriptions import PostgresSubscriber, SubscriptionRunner
from tests.support.tally import Counted, TallyOpened


class AppliedLog(PostgresSubscriber):
    """Writes down every event it is given, in the order it is given them."""

    event_types = None  # every type

    def __init__(self, name: str = "applied-log", fail_at: int | None = None) -> None:
        self.name = name
        self.fail_at = fail_at

    def handle(self, conn: Connection, recorded: RecordedEvent) -> None:
        if recorded.position == self.fail_at:
            raise ValueError(f"cannot apply event {recorded.position}")
        conn.execute(
            text("INSERT INTO applied_log (position) VALUES (:position)"),
            {"position": recorded.position},
        )


def _create_applied_log(application: Application) -> None:
    with application.engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE IF NOT EXISTS applied_log (seq bigserial, position bigint)")
        )


def _append_counts(application: Application, store: EventStore, stream: str, n: int) -> None:
    events: list[tuple[Event, Metadata]] = [(TallyOpened(stream), Metadata())]
    events += [(Counted(i), Metadata()) for i in range(n - 1)]
    with application.engine.begin() as conn:
        store.append(conn, stream_id=stream, stream_type="tally", expected_version=0, events=events)


def _applied(application: Application) -> list[int]:
    with application.engine.connect() as conn:
        return list(conn.execute(text("SELECT position FROM applied_log ORDER BY seq")).scalars())


def _log_order(application: Application) -> list[int]:
    with application.engine.connect() as conn:
        return list(
            conn.execute(text("SELECT position FROM events ORDER BY transaction_id, position"))
            .scalars()
        )  # fmt: skip


def test_out_of_order_commits_are_applied_once_each_in_log_order(
    application: Application, store: EventStore
) -> None:
    _create_applied_log(application)
    runner = SubscriptionRunner(application.engine, store, batch_size=200)
    subscriber = AppliedLog()
    writers_done = threading.Event()

    def writer(n: int) -> None:
        rng = random.Random(n)
        with application.engine.connect() as conn:
            for version in range(2000):
                with conn.begin():
                    # Declare and take a transaction id before the append, as a command
                    # that writes elsewhere first does, so commits often land out of
                    # position order.
                    horizon.declare_writer(conn)
                    conn.execute(text("SELECT pg_current_xact_id()"))
                    store.append(
                        conn, stream_id=f"writer-{n}", stream_type="tally",
                        expected_version=version, events=[(Counted(version), Metadata())],
                    )  # fmt: skip
                    time.sleep(rng.uniform(0, 0.002))

    def follow() -> None:
        while not writers_done.is_set():
            runner.run(subscriber)
            time.sleep(0.005)

    follower = threading.Thread(target=follow)
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    follower.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    writers_done.set()
    follower.join()
    runner.run(subscriber)

    applied = _applied(application)
    assert len(applied) == 16_000
    assert len(set(applied)) == 16_000
    assert applied == _log_order(application)
    assert applied != sorted(applied), "commits never landed out of position order"


def test_a_failing_event_stops_the_subscription_before_it_and_resumes_once_fixed(
    application: Application, store: EventStore
) -> None:
    _create_applied_log(application)
    _append_counts(application, store, "t-1", 10)
    positions = _log_order(application)
    failing = positions[6]
    runner = SubscriptionRunner(application.engine, store, batch_size=4)
    broken = AppliedLog(fail_at=failing)

    report = runner.run(broken)
    (status,) = runner.status([broken])

    assert report.error and f"cannot apply event {failing}" in report.error
    assert _applied(application) == positions[:6]
    assert status.checkpoint.position == positions[5]
    assert status.state == "failed"
    assert status.failed_position == failing
    assert status.last_error and "cannot apply" in status.last_error
    assert status.lag_events == 4

    assert runner.run(broken).error  # still broken: still stopped there
    assert _applied(application) == positions[:6]

    fixed = AppliedLog()
    runner.run(fixed)
    (status,) = runner.status([fixed])
    assert _applied(application) == positions
    assert status.state == "caught_up"
    assert (status.lag_events, status.last_error) == (0, None)


def test_only_one_runner_per_subscription_works_at_a_time(
    application: Application, store: EventStore
) -> None:
    _create_applied_log(application)
    _append_counts(application, store, "t-1", 3)
    runner = SubscriptionRunner(application.engine, store)
    inside = threading.Event()
    release = threading.Event()

    class Slow(AppliedLog):
        def handle(self, conn: Connection, recorded: RecordedEvent) -> None:
            inside.set()
            release.wait(10)
            super().handle(conn, recorded)

    first = threading.Thread(target=runner.run, args=(Slow(),))
    first.start()
    assert inside.wait(10)
    second = runner.run(AppliedLog())
    release.set()
    first.join()

    assert second.busy
    assert _applied(application) == _log_order(application)


def test_status_reports_checkpoint_head_and_lag(
    application: Application, store: EventStore
) -> None:
    _create_applied_log(application)
    _append_counts(application, store, "t-1", 5)
    runner = SubscriptionRunner(application.engine, store)
    subscriber = AppliedLog()

    (before,) = runner.status([subscriber])
    runner.run(subscriber)
    (after,) = runner.status([subscriber])

    assert (before.lag_events, before.state) == (5, "running")
    assert before.lag_seconds >= 0
    assert (after.lag_events, after.lag_seconds, after.state) == (0, 0.0, "caught_up")
    assert after.checkpoint == after.head
