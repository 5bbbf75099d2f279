"""The streaming replicas queries read from, when READ_DATABASE_URL names any.

Each query reads from one replica, taken in turn; a replica that cannot be connected to
is passed over for `retry_after` seconds, and when none can be, the query fails with the
connection error (a 503). Queries never fall back to the primary: a lost replica would
otherwise send its whole load to the server every command needs.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from kernel.event_store import ConsistencyToken, EventStore
from projections.progress import ProgressWatch

LAG_MEASURED_EVERY = 0.5
"""Seconds a replica's measured delay is reused for the headers of later queries."""


@dataclass(frozen=True, slots=True)
class ReplicaLag:
    """How far a replica's data is behind the primary's, as the replica tells it."""

    replica: str
    seconds: float  # since the newest commit it replayed, or 0 when it replayed all it got
    bytes: int  # WAL received and not replayed yet
    paused: bool = False  # replay paused (pg_wal_replay_pause)
    replayed_at: datetime | None = None  # the newest commit it replayed was made then


# When the replica has replayed all it received, it is as current as it knows: 0, even
# though the last replayed commit may be old (an idle primary commits nothing).
_LAG = text(
    """
    SELECT CASE WHEN pg_last_wal_receive_lsn() IS NULL
                  OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
                ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))
           END,
           coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0),
           CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END,
           pg_last_xact_replay_timestamp()
    """
)


class Replica:
    """One streaming replica: its engine, a watch for the tokens queries wait to see
    replayed, and its last measured delay."""

    def __init__(self, name: str, engine: Engine, store: EventStore, poll_interval: float) -> None:
        self.name = name
        self.engine = engine
        self.store = store
        self.replayed: ProgressWatch[bool] = ProgressWatch(self._held, poll_interval)
        self.down_until = 0.0  # monotonic time before which queries pass it over
        self._lag: tuple[float, ReplicaLag] | None = None

    def lag(self, conn: Connection) -> ReplicaLag:
        """The replica's delay, measured on `conn` (a connection to it) at most every
        LAG_MEASURED_EVERY seconds."""
        now = time.monotonic()
        if self._lag is not None and now - self._lag[0] < LAG_MEASURED_EVERY:
            return self._lag[1]
        measured = self.measure(conn)
        self._lag = (now, measured)
        return measured

    def measure(self, conn: Connection) -> ReplicaLag:
        seconds, behind, paused, replayed_at = conn.execute(_LAG).one()
        return ReplicaLag(self.name, float(seconds), int(behind), bool(paused), replayed_at)

    def wait_replayed(self, token: ConsistencyToken, timeout: float) -> bool:
        """Whether the replica replayed the commit of `token`'s event within `timeout`
        seconds (the event is in its copy of the log)."""
        return self.replayed.wait(str(token), bool, timeout) is not None

    def _held(self, tokens: list[str]) -> dict[str, bool]:
        """For the watch: which of the waited-for tokens' events the replica holds."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return {
                token: self.store.holds(conn, ConsistencyToken.parse(token)) for token in tokens
            }


class Replicas:
    """The replicas queries spread over (see the module's docstring)."""

    def __init__(self, replicas: Sequence[Replica], *, retry_after: float = 5.0) -> None:
        if not replicas:
            raise ValueError("no replicas")
        self.replicas = list(replicas)
        self.retry_after = retry_after
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._by_engine = {replica.engine: replica for replica in self.replicas}

    def connect(self) -> Connection:
        """A connection to the next replica that answers; raises the last replica's
        OperationalError when none does."""
        with self._lock:
            first = next(self._turn) % len(self.replicas)
        ordered = self.replicas[first:] + self.replicas[:first]
        now = time.monotonic()
        # Replicas that failed lately are tried last, not never: all may be back.
        ordered.sort(key=lambda replica: replica.down_until > now)
        failure: OperationalError | None = None
        for replica in ordered:
            try:
                return replica.engine.connect()
            except OperationalError as error:
                replica.down_until = time.monotonic() + self.retry_after
                failure = error
        assert failure is not None
        raise failure

    def of(self, engine: Engine) -> Replica | None:
        """The replica `engine` connects to (None: not a replica's, the primary's)."""
        return self._by_engine.get(engine)

    def statuses(self) -> list[tuple[Replica, ReplicaLag | None, str | None]]:
        """Each replica with its delay now, or the error that kept it from answering."""
        found: list[tuple[Replica, ReplicaLag | None, str | None]] = []
        for replica in self.replicas:
            try:
                with replica.engine.connect() as conn:
                    found.append((replica, replica.measure(conn), None))
            except OperationalError as error:
                found.append((replica, None, str(error.orig or error).strip()[:300]))
        return found

    def dispose(self) -> None:
        for replica in self.replicas:
            replica.engine.dispose()
