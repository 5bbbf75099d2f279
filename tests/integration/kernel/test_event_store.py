from __future__ import annotations

import contextlib
import json
import threading

import pytest
from sqlalchemy import Engine, text

from config.bootstrap import Application
from kernel.errors import ConcurrencyError
from kernel.event_store import EventStore
from kernel.horizon import declare_writer
from kernel.messages import Event, Metadata
from kernel.partitions import slot_of
from tests.support.event_log import event_count
from tests.support.tally import Counted, TallyOpened


def test_appended_events_read_back_in_stream_order(
    application: Application, store: EventStore
) -> None:
    meta = Metadata(actor="tester")
    with application.engine.begin() as conn:
        stored = store.append(
            conn,
            stream_id="tally-1",
            stream_type="tally",
            expected_version=0,
            events=[(TallyOpened("groceries"), meta), (Counted(3), meta)],
        )
    with application.engine.connect() as conn:
        read = store.read_stream(conn, "tally-1")

    assert [r.event for r in read] == [TallyOpened("groceries"), Counted(3)]
    assert [r.version for r in read] == [1, 2]
    assert [r.position for r in read] == [s.position for s in stored]
    assert read[0].metadata == meta
    assert read[0].stream_type == "tally"


def test_append_at_a_stale_version_raises_and_writes_nothing(
    application: Application, store: EventStore
) -> None:
    _append(application.engine, store, "tally-1", 0, TallyOpened("a"))

    with pytest.raises(ConcurrencyError), application.engine.begin() as conn:
        store.append(
            conn, stream_id="tally-1", stream_type="tally", expected_version=0,
            events=[(TallyOpened("b"), Metadata())],
        )  # fmt: skip

    assert event_count(application) == 1


def test_append_beyond_the_end_of_a_stream_raises(
    application: Application, store: EventStore
) -> None:
    with pytest.raises(ConcurrencyError):
        _append(application.engine, store, "tally-1", 5, Counted(1))
    assert event_count(application) == 0


def test_two_concurrent_appends_at_one_version_exactly_one_wins(
    application: Application, store: EventStore
) -> None:
    _append(application.engine, store, "tally-1", 0, TallyOpened("race"))
    both_inserted = threading.Barrier(2, timeout=10)
    outcomes: list[str] = []

    def writer(amount: int) -> None:
        try:
            with application.engine.begin() as conn:
                store.append(
                    conn, stream_id="tally-1", stream_type="tally", expected_version=1,
                    events=[(Counted(amount), Metadata())],
                )  # fmt: skip
                # The other writer either reaches here too or blocks on our row.
                with contextlib.suppress(threading.BrokenBarrierError):
                    both_inserted.wait(timeout=1)
            outcomes.append("won")
        except ConcurrencyError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=writer, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["conflict", "won"]
    with application.engine.connect() as conn:
        assert [r.version for r in store.read_stream(conn, "tally-1")] == [1, 2]


def test_an_event_stored_at_schema_version_1_reads_back_upcast_to_version_2(
    application: Application, store: EventStore
) -> None:
    with application.engine.begin() as conn:
        declare_writer(conn)
        conn.execute(
            text(
                "INSERT INTO events (stream_id, stream_type, version, type, schema_version,"
                " data, metadata, partition_key, slot) VALUES ('tally-old', 'tally', 1,"
                " 'TallyOpened', 1, CAST(:data AS jsonb), CAST(:meta AS jsonb), 'tally-old',"
                " :slot)"
            ),
            {"data": '{"name": "legacy"}', "meta": _json(Metadata()), "slot": slot_of("tally-old")},
        )
    with application.engine.connect() as conn:
        (recorded,) = store.read_stream(conn, "tally-old")

    assert recorded.event == TallyOpened(title="legacy")
    assert recorded.data == {"title": "legacy"}


def test_events_cannot_be_updated_or_deleted(application: Application, store: EventStore) -> None:
    _append(application.engine, store, "tally-1", 0, TallyOpened("kept"))
    for statement in ("UPDATE events SET type = 'X'", "DELETE FROM events"):
        with pytest.raises(Exception, match="append-only"), application.engine.begin() as conn:
            conn.execute(text(statement))
    assert event_count(application) == 1


def _append(engine: Engine, store: EventStore, stream: str, expected: int, event: Event) -> None:
    with engine.begin() as conn:
        store.append(
            conn, stream_id=stream, stream_type="tally", expected_version=expected,
            events=[(event, Metadata())],
        )  # fmt: skip


def _json(meta: Metadata) -> str:
    return json.dumps(meta.to_json())
