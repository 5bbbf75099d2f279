from __future__ import annotations

import threading

from sqlalchemy import text

from config.bootstrap import Application
from kernel.command_bus import CommandBus
from kernel.event_store import Checkpoint, EventStore
from kernel.messages import Metadata
from kernel.results import Failure, Success
from kernel.unit_of_work import UnitOfWork
from tests.support.tally import Count, Counted, OpenTally, Tally, TallyOpened


def test_a_command_appends_its_events_and_returns_id_and_token(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    result = bus.dispatch(OpenTally("t-1", "books"))

    assert isinstance(result, Success)
    assert result.aggregate_id == "t-1"
    with application.engine.connect() as conn:
        (recorded,) = store.read_stream(conn, "tally-t-1")
    assert recorded.event == TallyOpened("books")
    assert Checkpoint.parse(result.consistency_token) == recorded.checkpoint


def test_events_carry_the_commands_correlation_and_causation(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    command_meta = Metadata(actor="customer:42", correlation_id="corr-1")
    bus.dispatch(OpenTally("t-1", "books"), command_meta)

    with application.engine.connect() as conn:
        (recorded,) = store.read_stream(conn, "tally-t-1")
    assert recorded.metadata.correlation_id == "corr-1"
    assert recorded.metadata.causation_id == command_meta.message_id
    assert recorded.metadata.actor == "customer:42"
    assert recorded.metadata.message_id != command_meta.message_id


def test_the_same_command_id_twice_appends_one_set_of_events(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    bus.dispatch(OpenTally("t-1", "books"))
    meta = Metadata()

    first = bus.dispatch(Count("t-1", 5), meta)
    second = bus.dispatch(Count("t-1", 5), meta)

    assert first == second
    with application.engine.connect() as conn:
        assert [r.event for r in store.read_stream(conn, "tally-t-1")][1:] == [Counted(5)]


def test_the_same_command_id_sent_concurrently_is_applied_once(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    bus.dispatch(OpenTally("t-1", "books"))
    meta = Metadata()
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(bus.dispatch(Count("t-1", 1), meta)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(results)) == 1
    with application.engine.connect() as conn:
        assert len(store.read_stream(conn, "tally-t-1")) == 2


def test_a_broken_rule_fails_with_its_code_and_writes_nothing(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    bus.dispatch(OpenTally("t-1", "books"))
    meta = Metadata()

    result = bus.dispatch(Count("t-1", -1), meta)

    assert result == Failure("not_positive", "only positive amounts count")
    assert bus.dispatch(Count("t-1", -1), meta) == result
    with application.engine.connect() as conn:
        assert len(store.read_stream(conn, "tally-t-1")) == 1


def test_an_unknown_aggregate_is_reported_not_found(bus: CommandBus) -> None:
    result = bus.dispatch(Count("missing", 1))
    assert isinstance(result, Failure)
    assert result.code == "not_found"


def test_concurrent_writers_of_one_stream_all_land_in_order(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    bus.dispatch(OpenTally("t-1", "hot"))
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(bus.dispatch(Count("t-1", 1))))
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(result.ok for result in results)
    with application.engine.connect() as conn:
        versions = [r.version for r in store.read_stream(conn, "tally-t-1")]
    assert versions == list(range(1, 22))


def test_loading_from_a_snapshot_equals_loading_the_full_stream(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    bus.dispatch(OpenTally("t-1", "long"))
    for amount in range(1, 26):
        bus.dispatch(Count("t-1", amount))

    with application.engine.connect() as conn:
        snapshot_version = conn.execute(
            text("SELECT version FROM snapshots WHERE stream_id = 'tally-t-1'")
        ).scalar_one()
        with_snapshot = UnitOfWork(conn, store, Metadata()).get(Tally, "t-1")
        full = Tally("t-1")
        full.replay(r.event for r in store.read_stream(conn, "tally-t-1"))

    assert snapshot_version == 20  # taken every 10 events
    assert vars(with_snapshot) == vars(full)
    assert (full.total, full.counts, full.version) == (325, 25, 26)


def test_a_command_id_reused_for_another_command_is_refused(
    bus: CommandBus, application: Application, store: EventStore
) -> None:
    bus.dispatch(OpenTally("t-1", "books"))
    meta = Metadata()
    bus.dispatch(Count("t-1", 1), meta)

    reused = bus.dispatch(Count("t-1", 2), meta)

    assert isinstance(reused, Failure)
    assert reused.code == "command_id_reused"
    with application.engine.connect() as conn:
        assert [r.event for r in store.read_stream(conn, "tally-t-1")][1:] == [Counted(1)]
