"""The horizon: how far readers of the log may read without ever skipping an event.

Positions are taken when events are inserted, but transactions commit in any order,
so a reader must not pass an event while a transaction that could still commit one
before it is running. Waiting for every transaction on the server (the snapshot's
xmin) lets one idle transaction in any database stall every reader. Instead, a
transaction that appends events declares itself first, before it has a transaction
id, by taking a transaction-scoped advisory lock keyed by its backend; the horizon is
the oldest transaction id among the declared writers still running, or the next id
to be assigned if none is.

Why that is gap-free: the horizon is computed in one statement and the events are read
in a later one (a newer snapshot). A writer whose id is below the horizon had its id
before the first statement began, so it had declared by then: had it still been
running, its lock would have been seen and the horizon set at or below its id. So it
had finished, and its events are in the newer snapshot. A writer that declares later
gets an id at or above the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from kernel import driver

WRITER_LOCKS = 3
"""Advisory-lock namespace of declared writers (streams use 1, subscriptions 2)."""

HELD_BACK_AFTER = 5.0
"""Seconds an event-store writer runs before status pages name it as holding the
subscriptions back (every write transaction holds them back briefly; only a long one
is news)."""

_DECLARED = "kernel.horizon.declared"

DECLARE_SQL = f"SELECT pg_advisory_xact_lock({WRITER_LOCKS}, pg_backend_pid())"
"""The declaration as plain SQL, for writers that bypass the event store (bulk loads)."""

# Whether the transaction has an id yet (it wrote), then the lock, in that order.
_DECLARING = (
    "SELECT pg_current_xact_id_if_assigned() IS NULL AS clean,"
    f" pg_advisory_xact_lock({WRITER_LOCKS}, pg_backend_pid())::text"
)
_DECLARE = text(_DECLARING)

# The declared writers of this database still running, with their transaction ids
# (32-bit in pg_stat_activity: widened against the snapshot's xmax in Python).
_WRITERS = """
    SELECT a.pid, a.backend_xid::text::bigint, a.xact_start, a.state, left(a.query, 200),
           a.application_name, a.client_addr::text
    FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.classid = {ns} AND l.objsubid = 2 AND l.granted
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
_HORIZON = text(
    f"""
    SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
           (SELECT array_agg(w.backend_xid) FROM ({_WRITERS.format(ns=WRITER_LOCKS)}) AS w)
    """
)
_RUNNING_WRITERS = text(
    f"""
    SELECT w.*, now() - w.xact_start AS age
    FROM ({_WRITERS.format(ns=WRITER_LOCKS)}) AS w ORDER BY w.xact_start
    """
)


def declare_writer(conn: Connection) -> None:
    """Declare the transaction on `conn` as one that may append events.

    Must come before the transaction writes anything (before it has an id); once per
    transaction is enough, and repeating it is harmless. Raises RuntimeError when the
    transaction already wrote without declaring.
    """
    if must_declare(conn):
        ((clean, _),) = driver.fetch(conn, _DECLARE, {})
        declared(conn, clean)


def must_declare(conn: Connection) -> bool:
    """Whether the transaction on `conn` has yet to declare itself."""
    transaction = conn.get_transaction()
    return transaction is None or conn.info.get(_DECLARED) is not transaction


def declaring_cte(conn: Connection) -> str:
    """A CTE `declared(clean)` for a writer's first statement, which must read it before
    it writes (e.g. in its FROM list) and hand `clean` to `declared`: it declares the
    transaction if it has not declared yet (`clean` then says whether it had written
    before), and is a constant true otherwise. One round trip instead of two."""
    if must_declare(conn):
        return f"declared AS MATERIALIZED ({_DECLARING})"
    return "declared AS MATERIALIZED (SELECT true AS clean)"


def declared(conn: Connection, clean: bool) -> None:
    """Note that the transaction on `conn` has declared (`declare_writer`, or a statement
    with `declaring_cte`); raises RuntimeError if it had written before (not `clean`)."""
    if not clean:
        raise RuntimeError(
            "a transaction that appends events must declare itself before it writes"
            " (kernel.horizon.declare_writer)"
        )
    conn.info[_DECLARED] = conn.get_transaction()


def horizon(conn: Connection) -> int:
    """The transaction id below which every event is committed for good (an xid8 as int).

    Read events below it in a later statement than this one (see the module docstring).
    """
    return horizon_and_writers(conn)[0]


def horizon_and_writers(conn: Connection) -> tuple[int, bool]:
    """`horizon`, and whether a running event-store writer sets it (a reader that found
    nothing may find its events a moment later)."""
    xmax, writers = conn.execute(_HORIZON).one()
    bound = int(xmax)
    for xid in writers or ():
        if xid is not None:
            bound = min(bound, widen(int(xid), int(xmax)))
    return bound, bound < int(xmax)


def widen(xid: int, xmax: int) -> int:
    """A 32-bit transaction id as the 64-bit one it stands for, given a recent xmax (ids
    at or past xmax, assigned since, come back as xmax: they hold nothing back)."""
    low = xmax & 0xFFFFFFFF
    ahead = (xid - low) % (1 << 32)
    if ahead < (1 << 31):
        return xmax
    return xmax - ((1 << 32) - ahead)


@dataclass(frozen=True, slots=True)
class RunningWriter:
    """A declared writer still running: a transaction that holds readers back while it
    lasts."""

    pid: int
    transaction_id: int | None
    started: datetime | None
    age_seconds: float
    state: str | None
    query: str | None
    application: str | None
    client: str | None


def running_writers(conn: Connection, older_than: float = 0.0) -> list[RunningWriter]:
    """Declared writers that have run for longer than `older_than` seconds, oldest first."""
    found = []
    for pid, xid, started, state, query, application, client, age in conn.execute(_RUNNING_WRITERS):
        seconds = age.total_seconds() if age is not None else 0.0
        if seconds >= older_than:
            found.append(
                RunningWriter(pid, xid, started, seconds, state, query, application or None, client)
            )
    return found
