"""Append-only event store in PostgreSQL.

One table (`events`) holds every stream. `position` orders events globally,
`transaction_id` (xid8 of the writing transaction) lets readers follow the log
without skipping events whose transactions commit out of position order.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, TextClause, text
from sqlalchemy.exc import IntegrityError

from kernel import driver, horizon, jsonb
from kernel.errors import ConcurrencyError
from kernel.messages import Event, Metadata
from kernel.partitions import SLOTS, slot_of
from kernel.personal_data import ENVELOPE, PersonalDataKeys, sealed_payload, subject_of
from kernel.registry import EventRegistry


@dataclass(frozen=True, slots=True, order=True)
class Checkpoint:
    """A place in the log: readers have seen every event at or before it."""

    transaction_id: int = 0
    position: int = 0

    def token(self) -> str:
        return f"{self.transaction_id}.{self.position}"

    @classmethod
    def parse(cls, token: str) -> Checkpoint:
        """Read a checkpoint or a consistency token (see `ConsistencyToken`); raises
        ValueError if it is malformed."""
        return ConsistencyToken.parse(token).checkpoint


@dataclass(frozen=True, slots=True)
class ConsistencyToken:
    """What a command's response hands back for read-your-writes: the place of its last
    event and that event's slot, which names the partition a read model must have
    applied it in. Written `tx.position.slot`; a bare `tx.position` has no slot."""

    checkpoint: Checkpoint
    slot: int | None = None

    @classmethod
    def of(cls, recorded: RecordedEvent) -> ConsistencyToken:
        return cls(recorded.checkpoint, recorded.slot)

    def __str__(self) -> str:
        base = self.checkpoint.token()
        return base if self.slot is None else f"{base}.{self.slot}"

    @classmethod
    def parse(cls, token: str) -> ConsistencyToken:
        """Raises ValueError if `token` is malformed."""
        parts = token.split(".")
        if len(parts) not in (2, 3):
            raise ValueError("a token is tx.position[.slot]")
        numbers = [int(part) for part in parts]
        if any(number < 0 for number in numbers):
            raise ValueError("negative checkpoint")
        if numbers[0] > XID8_MAX or numbers[1] > BIGINT_MAX:
            raise ValueError("beyond any place in the log")  # an xid8 and a bigint
        slot = numbers[2] if len(numbers) == 3 else None
        if slot is not None and slot >= SLOTS:
            raise ValueError("no such slot")
        return cls(Checkpoint(numbers[0], numbers[1]), slot)


START = Checkpoint()
PARKED = "(parked)"
"""The type an event of a parked key reads as (see `EventStore.read_all`): no handler
handles it, so every subscriber passes over it."""
BIGINT_MAX = 2**63 - 1
XID8_MAX = 2**64 - 1
UNIQUE_VIOLATION = "23505"


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: its place in the log and stream, payload and metadata.

    An event of a type its reader skips (see `EventStore.read_all`'s `types`) is
    read without payload: its `data` is empty and `event` and `metadata` raise. So is
    an event of a key its reader parked (see `read_all`'s `parked`), and its type
    reads PARKED.
    """

    position: int
    transaction_id: int
    stream_id: str
    stream_type: str
    version: int
    type: str
    data: dict[str, Any]
    recorded_at: datetime
    decoded: Event | None = field(default=None, repr=False)
    decoded_metadata: Metadata | None = field(default=None, repr=False)
    slot: int = 0  # of its partition key (see kernel.partitions)
    key: str = ""  # its partition key: what it is about (see EventStore.partition_key)
    # Its personal fields as stored, sealed (see kernel.personal_data), None if it has
    # none: `data` and `event` hold them opened, or erased once their person is forgotten.
    sealed: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def event(self) -> Event:
        if self.decoded is None:
            raise _unread(self.type)
        return self.decoded

    @property
    def metadata(self) -> Metadata:
        if self.decoded_metadata is None:
            raise _unread(self.type)
        return self.decoded_metadata

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.transaction_id, self.position)


class UndecodableEvent(Exception):
    """A stored event no event class can take (e.g. its shape changed without an upcaster).

    Carries the events of the batch before it, which did decode, its place, type and key.
    """

    def __init__(
        self,
        readable: list[RecordedEvent],
        checkpoint: Checkpoint,
        reason: str,
        *,
        type_name: str = "",
        key: str = "",
    ):
        super().__init__(reason)
        self.readable = readable
        self.checkpoint = checkpoint
        self.reason = reason
        self.type_name = type_name
        self.key = key


@dataclass(frozen=True, slots=True)
class EventHeader:
    """An event's place in the log and stream, its type and metadata: all but its payload."""

    position: int
    transaction_id: int
    stream_id: str
    version: int
    type: str
    recorded_at: datetime
    metadata: Metadata


@dataclass(frozen=True, slots=True)
class Snapshot:
    stream_id: str
    version: int
    schema_version: int
    state: dict[str, Any]


# Every stream a command saves, in one statement: each row goes in only if its stream
# is at the row's expected version (the unique key catches a writer that got there
# first), in the order given. The first CTE declares the writer (kernel.horizon) if the
# transaction has not yet: it is read, in FROM, before anything is inserted.
_APPEND = """
    WITH {declared}
    INSERT INTO events (stream_id, stream_type, version, type, schema_version, data, metadata,
                        partition_key, slot)
    SELECT r.stream_id, r.stream_type, r.version, r.type, r.schema_version, r.data, r.metadata,
           r.partition_key, r.slot
    FROM declared, jsonb_to_recordset(CAST(:rows AS jsonb))
         AS r(n int, stream_id text, stream_type text, expected int, version int, type text,
              schema_version int, data jsonb, metadata jsonb, partition_key text, slot smallint)
    -- LIMIT 1 keeps this an index probe per row (a hashed subplan would read every event)
    LEFT JOIN LATERAL (
        SELECT true AS found FROM events
        WHERE events.stream_id = r.stream_id AND events.version = r.expected LIMIT 1
    ) AS at ON true
    WHERE r.expected = 0 OR at.found
    ORDER BY r.n
    RETURNING stream_id, version, position, transaction_id::text::bigint, recorded_at,
              (SELECT clean FROM declared)
"""


@functools.cache
def _append(declared: str) -> TextClause:
    return text(_APPEND.format(declared=declared))


# The select list `EventStore.recorded` turns into a RecordedEvent.
_SELECT_LIST = """position, transaction_id::text::bigint, stream_id, stream_type, version, type,
    schema_version, {payload}, recorded_at, slot, partition_key"""
COLUMNS = _SELECT_LIST.format(payload="data, metadata")

_READ_STREAM = text(
    f"SELECT {COLUMNS} FROM events WHERE stream_id = :stream_id AND version > :after"
    " ORDER BY version"
)

# Only events of transactions below the horizon (see EventStore.horizon) are visible for
# good; anything newer may still be joined by an earlier position.
_READ_ALL = """
    SELECT {columns} FROM events
    WHERE (transaction_id, position) > (CAST(CAST(:tx AS text) AS xid8), :position)
      AND transaction_id < CAST(CAST(:horizon AS text) AS xid8)
      AND slot = ANY(CAST(:slots AS smallint[]))
    ORDER BY events.transaction_id, events.position  -- the columns, not the bigint aliases
    LIMIT :limit
"""
_READ_ALL_EVERY_PAYLOAD = text(_READ_ALL.format(columns=COLUMNS))
# The same rows, with payload and metadata only for the types the reader handles:
# it still moves its checkpoint over the others, without parsing their JSON.
_READ_ALL_SOME_PAYLOADS = text(
    _READ_ALL.format(
        columns=_SELECT_LIST.format(
            payload="CASE WHEN type = ANY(:types) THEN data END,"
            " CASE WHEN type = ANY(:types) THEN metadata END"
        )
    )
)


_HOLDS = text(
    "SELECT EXISTS (SELECT FROM events WHERE position = :position"
    " AND transaction_id = CAST(CAST(:tx AS text) AS xid8)"
    " AND (CAST(:slot AS smallint) IS NULL OR slot = CAST(:slot AS smallint)))"
)
_HEAD = text(
    "SELECT transaction_id::text::bigint, position, recorded_at FROM events"
    " ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1"
)
# Per slot, the last event by the (slot, transaction_id, position) index; then the last.
_HEAD_OF_SLOTS = text(
    """
    SELECT last.tx, last.position, last.recorded_at
    FROM unnest(CAST(:slots AS smallint[])) AS s(slot)
    CROSS JOIN LATERAL (
        SELECT transaction_id, transaction_id::text::bigint AS tx, position, recorded_at
        FROM events WHERE events.slot = s.slot
        ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1
    ) AS last
    ORDER BY last.transaction_id DESC, last.position DESC LIMIT 1
    """
)
_BACKLOG = text(
    """
    SELECT count(*), min(recorded_at) FROM events
    WHERE slot = ANY(CAST(:slots AS smallint[]))
      AND (transaction_id, position) > (CAST(CAST(:tx AS text) AS xid8), :position)
    """
)

# Each partition's events after its checkpoint: unnest numbers the checkpoints from 1.
_AFTER_PARTITION_CHECKPOINTS = f"""
    FROM unnest(CAST(:txs AS bigint[]), CAST(:positions AS bigint[]))
         WITH ORDINALITY AS c(tx, position, n)
    CROSS JOIN LATERAL (
        SELECT recorded_at FROM events
        WHERE slot = ANY(CAST(ARRAY(SELECT generate_series(CAST(c.n - 1 AS int), {SLOTS - 1},
                                                            :count)) AS smallint[]))
          AND (transaction_id, position) > (CAST(CAST(c.tx AS text) AS xid8), c.position)
        {{limit}}
    ) AS later
"""
_PARTITION_BACKLOG = text(
    "SELECT count(*), min(later.recorded_at)" + _AFTER_PARTITION_CHECKPOINTS.format(limit="")
)
_PARTITIONS_BEHIND = text(
    "SELECT EXISTS (SELECT" + _AFTER_PARTITION_CHECKPOINTS.format(limit="LIMIT 1") + ")"
)


def _partition_params(checkpoints: Sequence[Checkpoint]) -> dict[str, Any]:
    return {
        "count": len(checkpoints),
        "txs": [c.transaction_id for c in checkpoints],
        "positions": [c.position for c in checkpoints],
    }


_READ_EVENTS = text(
    f"""
    SELECT {COLUMNS} FROM events
    JOIN unnest(CAST(:txs AS bigint[]), CAST(:positions AS bigint[])) AS wanted(tx, at)
      ON events.position = wanted.at
     AND events.transaction_id = CAST(CAST(wanted.tx AS text) AS xid8)
    ORDER BY events.transaction_id, events.position
    """
)

# The events about one key, in log order: see EventStore.about.
_ABOUT = """
    SELECT position, transaction_id::text::bigint, stream_id, version, type, recorded_at, metadata
    FROM events
    WHERE data ->> '{key_field}' = :key
      AND (transaction_id, position) > (CAST(CAST(:tx AS text) AS xid8), :position)
      AND (CAST(:types AS text[]) IS NULL OR type = ANY(:types))
    ORDER BY events.transaction_id, events.position
"""
_READ_ABOUT = """
    SELECT {columns} FROM events WHERE data ->> '{key_field}' = ANY(:keys)
    ORDER BY events.transaction_id, events.position
"""
_KEY_FIELD = re.compile(r"[a-z_]{1,63}")


@dataclass(frozen=True, slots=True)
class PendingAppend:
    """Events of one stream encoded and sealed, to be appended by `EventStore.append_all`."""

    stream_id: str
    stream_type: str
    expected_version: int
    events: Sequence[tuple[Event, Metadata]]
    rows: list[dict[str, Any]]  # as stored (sealed), each with its stream and expected version
    opened: list[dict[str, Any]]  # their payloads as encoded, before sealing

    def recorded(self, stored: Sequence[Any]) -> list[RecordedEvent]:
        """The events as stored, `stored` being the statement's rows for them."""
        return [
            RecordedEvent(
                position=position,
                transaction_id=tx,
                stream_id=self.stream_id,
                stream_type=self.stream_type,
                version=row["version"],
                type=row["type"],
                data=data,
                recorded_at=recorded_at,
                decoded=event,
                decoded_metadata=metadata,
                slot=row["slot"],
                key=row["partition_key"],
                sealed=row["data"].get(ENVELOPE),
            )
            for (position, tx, recorded_at), row, data, (event, metadata) in zip(
                stored, self.rows, self.opened, self.events, strict=True
            )
        ]


class EventStore:
    """Reads and appends events; every method works inside the caller's transaction.

    `key_field` names the payload field that says what an event is about across
    streams (for the shop, the order id: an order's, its reservation's and its
    payment's events all carry it); `about` reads by it, and an index on
    `data ->> key_field` keeps that fast. Events of streams of `keyed_stream_types`
    are partitioned by it too (see kernel.partitions); every other event by its
    stream, so that, say, a SKU's stock events stay in one partition, in order.
    """

    def __init__(
        self,
        registry: EventRegistry,
        *,
        key_field: str | None = None,
        keyed_stream_types: Collection[str] = (),
    ) -> None:
        self.registry = registry
        self.personal_keys = PersonalDataKeys()
        if key_field is not None and not _KEY_FIELD.fullmatch(key_field):
            raise ValueError(f"not a payload field name: {key_field!r}")
        self.key_field = key_field
        self.keyed_stream_types = frozenset(keyed_stream_types)
        self._about = text(_ABOUT.format(key_field=key_field)) if key_field else None
        self._read_about = (
            text(_READ_ABOUT.format(key_field=key_field, columns=COLUMNS)) if key_field else None
        )

    def partition_key(self, stream_id: str, stream_type: str, data: dict[str, Any]) -> str:
        """What an event is about, for partitioning: its `key_field` in a keyed stream,
        else its stream."""
        if self.key_field and stream_type in self.keyed_stream_types:
            key = data.get(self.key_field)
            if isinstance(key, str) and key:
                return key
        return stream_id

    def append(
        self,
        conn: Connection,
        *,
        stream_id: str,
        stream_type: str,
        expected_version: int,
        events: Sequence[tuple[Event, Metadata]],
    ) -> list[RecordedEvent]:
        """Append events after `expected_version` (0 = new stream).

        Raises ConcurrencyError if the stream is not at exactly that version; the
        caller's transaction must then be rolled back.
        """
        if not events:
            return []
        return self.append_all(
            conn, [self.prepare(conn, stream_id, stream_type, expected_version, events)]
        )

    def prepare(
        self,
        conn: Connection,
        stream_id: str,
        stream_type: str,
        expected_version: int,
        events: Sequence[tuple[Event, Metadata]],
    ) -> PendingAppend:
        """`events` encoded and sealed for `append_all` (reads a sealing key only when
        this process has not read it in the last minute)."""
        rows: list[dict[str, Any]] = []
        opened: list[dict[str, Any]] = []
        for offset, (event, metadata) in enumerate(events, start=1):
            type_name, schema_version, data = self.registry.encode(event)
            opened.append(data)
            key = self.partition_key(stream_id, stream_type, data)
            declared = type(event).personal_fields
            if declared is not None:
                subject = str(data[declared.subject])
                if not self.personal_keys.kept(subject):
                    horizon.declare_writer(conn)  # reading the key may make one: a write
                data = sealed_payload(
                    declared, data, self.personal_keys.key_for_sealing(conn, subject)
                )
            rows.append(
                {
                    "stream_id": stream_id,
                    "stream_type": stream_type,
                    "expected": expected_version,
                    "version": expected_version + offset,
                    "type": type_name,
                    "schema_version": schema_version,
                    "data": data,
                    "metadata": metadata.to_json(),
                    "partition_key": key,
                    "slot": slot_of(key),
                }
            )
        return PendingAppend(stream_id, stream_type, expected_version, events, rows, opened)

    def append_all(self, conn: Connection, appends: Sequence[PendingAppend]) -> list[RecordedEvent]:
        """Every append, in order, in one statement, which also declares the transaction
        as a writer (kernel.horizon) if it has not declared yet. Each stream must be at
        its expected version, else ConcurrencyError: the caller's transaction must then
        be rolled back."""
        rows = [row for pending in appends for row in pending.rows]
        if not rows:
            return []
        for n, row in enumerate(rows):
            row["n"] = n
        statement = _append(horizon.declaring_cte(conn))
        try:
            stored = driver.fetch(conn, statement, {"rows": jsonb.dumps(rows)})
        except IntegrityError as error:
            if getattr(error.orig, "sqlstate", None) != UNIQUE_VIOLATION:
                raise
            streams = ", ".join(pending.stream_id for pending in appends)
            raise ConcurrencyError(f"{streams}: one moved past its expected version") from error
        if stored:
            horizon.declared(conn, stored[0][5])
        placed = {(row[0], row[1]): row[2:5] for row in stored}
        recorded: list[RecordedEvent] = []
        for pending in appends:
            mine = [placed.get((pending.stream_id, row["version"])) for row in pending.rows]
            if None in mine:
                raise ConcurrencyError(
                    f"{pending.stream_id} is not at version {pending.expected_version}"
                )
            recorded += pending.recorded(mine)
        return recorded

    def read_stream(
        self, conn: Connection, stream_id: str, after_version: int = 0
    ) -> list[RecordedEvent]:
        rows = conn.execute(_READ_STREAM, {"stream_id": stream_id, "after": after_version})
        return self._decoded(conn, rows)

    def read_all(
        self,
        conn: Connection,
        after: Checkpoint = START,
        limit: int = 1000,
        types: Collection[str] | None = None,
        *,
        slots: Collection[int] | None = None,
        below: int | None = None,
        parked: Collection[str] = (),
    ) -> list[RecordedEvent]:
        """The next events in log order after `after`, never skipping one.

        Only events below the horizon are read (see kernel.horizon): pass `below`, a
        horizon computed in an earlier statement, or one is computed here first. With
        `slots`, only events of those slots (a partition's). With `types`, events of
        other types come without their payload and metadata (their `event` and
        `metadata` raise): for readers that only need to pass over them. Events of the
        keys in `parked` that the reader handles come undecoded too, typed PARKED.
        """
        params: dict[str, Any] = {
            "tx": after.transaction_id,
            "position": after.position,
            "limit": limit,
            "horizon": horizon.horizon(conn) if below is None else below,
            "slots": list(range(SLOTS)) if slots is None else sorted(slots),
        }
        statement = _READ_ALL_EVERY_PAYLOAD
        if types is not None:
            statement, params["types"] = _READ_ALL_SOME_PAYLOADS, sorted(types)
        with driver.cursor(conn) as cursor:  # a catch-up batch: rows without SQLAlchemy's layers
            rows = cursor.execute(driver.compiled(statement, conn.dialect), params).fetchall()
        return self._decoded(conn, rows, parked)

    def read_events(
        self, conn: Connection, checkpoints: Sequence[Checkpoint]
    ) -> list[RecordedEvent]:
        """The events at `checkpoints`, decoded, in log order (raises UndecodableEvent
        at the first that no longer decodes)."""
        params = {
            "txs": [c.transaction_id for c in checkpoints],
            "positions": [c.position for c in checkpoints],
        }
        return self._decoded(conn, conn.execute(_READ_EVENTS, params))

    def _decoded(
        self, conn: Connection, rows: Iterable[Any], parked: Collection[str] = ()
    ) -> list[RecordedEvent]:
        """The events of rows selected with COLUMNS, their personal fields opened with keys
        read in one statement; raises UndecodableEvent, carrying those before it, at the
        first that no longer decodes."""
        rows = list(rows)
        if parked:
            rows = [_parked(row) if row[7] is not None and row[11] in parked else row
                    for row in rows]  # fmt: skip
        subjects = {subject for row in rows if not isinstance(row, RecordedEvent)
                    and row[7] is not None and (subject := subject_of(row[7]))}  # fmt: skip
        keys = self.personal_keys.keys(conn, subjects)
        events: list[RecordedEvent] = []
        for row in rows:
            if isinstance(row, RecordedEvent):  # parked
                events.append(row)
                continue
            try:
                events.append(self.recorded(row, keys))
            except Exception as error:
                at = Checkpoint(row[1], row[0])
                reason = f"{row[5]}: {type(error).__name__}: {error}"
                raise UndecodableEvent(events, at, reason, type_name=row[5], key=row[11]) from error
        return events

    def about(
        self,
        conn: Connection,
        key: str,
        *,
        after: Checkpoint = START,
        types: Collection[str] | None = None,
    ) -> list[EventHeader]:
        """The events whose `key_field` is `key`, in log order: those after `after`, and of
        `types` only when given. Their payloads are not read (nor decoded)."""
        if self._about is None:
            raise RuntimeError("this event store was given no key_field")
        params = {
            "key": key,
            "tx": after.transaction_id,
            "position": after.position,
            "types": None if types is None else sorted(types),
        }
        return [
            EventHeader(position, tx, stream_id, version, type_name, at, Metadata.from_json(meta))
            for position, tx, stream_id, version, type_name, at, meta in conn.execute(
                self._about, params
            )
        ]

    def read_about(self, conn: Connection, keys: Collection[str]) -> list[RecordedEvent]:
        """Every event whose `key_field` is one of `keys`, with its payload, in log order."""
        if self._read_about is None:
            raise RuntimeError("this event store was given no key_field")
        if not keys:
            return []
        return self._decoded(conn, conn.execute(self._read_about, {"keys": sorted(set(keys))}))

    def holds(self, conn: Connection, token: ConsistencyToken) -> bool:
        """Whether the log holds the event `token` names (in its slot, if it names one):
        a token a command answered with always does, once that answer was sent."""
        params = {
            "tx": token.checkpoint.transaction_id,
            "position": token.checkpoint.position,
            "slot": token.slot,
        }
        return bool(conn.execute(_HOLDS, params).scalar())

    def head(
        self, conn: Connection, slots: Collection[int] | None = None
    ) -> tuple[Checkpoint, datetime | None]:
        """The last event in log order (of `slots` only, if given) and when it was recorded
        (START, None if there is none)."""
        if slots is None:
            row = conn.execute(_HEAD).first()
        else:
            row = conn.execute(_HEAD_OF_SLOTS, {"slots": sorted(slots)}).first()
        if row is None:
            return START, None
        return Checkpoint(row[0], row[1]), row[2]

    def backlog(
        self, conn: Connection, after: Checkpoint, slots: Collection[int] | None = None
    ) -> tuple[int, datetime | None]:
        """How many events lie after `after` (in `slots`, if given), and when the oldest of
        them was recorded."""
        params = {
            "tx": after.transaction_id,
            "position": after.position,
            "slots": list(range(SLOTS)) if slots is None else sorted(slots),
        }
        row = conn.execute(_BACKLOG, params).one()
        return int(row[0]), row[1]

    def partitions_behind(self, conn: Connection, checkpoints: Sequence[Checkpoint]) -> bool:
        """Whether any event lies after the partitions' checkpoints (`checkpoints[p]` being
        partition p's, of len(checkpoints)): one probe per slot, no count."""
        return bool(conn.execute(_PARTITIONS_BEHIND, _partition_params(checkpoints)).scalar())

    def partition_backlog(
        self, conn: Connection, checkpoints: Sequence[Checkpoint]
    ) -> tuple[int, datetime | None]:
        """`backlog` over a subscription's partitions, `checkpoints[p]` being partition p's
        (of len(checkpoints)), in one statement."""
        row = conn.execute(_PARTITION_BACKLOG, _partition_params(checkpoints)).one()
        return int(row[0]), row[1]

    def load_snapshot(self, conn: Connection, stream_id: str) -> Snapshot | None:
        row = conn.execute(
            text(
                "SELECT version, schema_version, state FROM snapshots WHERE stream_id = :stream_id"
            ),
            {"stream_id": stream_id},
        ).first()
        if row is None:
            return None
        return Snapshot(stream_id, row[0], row[1], row[2])

    def save_snapshot(self, conn: Connection, stream_type: str, snapshot: Snapshot) -> None:
        conn.execute(
            text(
                """
                INSERT INTO snapshots (stream_id, stream_type, version, schema_version, state)
                VALUES (:stream_id, :stream_type, :version, :schema_version, CAST(:state AS jsonb))
                ON CONFLICT (stream_id) DO UPDATE
                SET version = EXCLUDED.version, schema_version = EXCLUDED.schema_version,
                    state = EXCLUDED.state, taken_at = now()
                WHERE snapshots.version < EXCLUDED.version
                """
            ),
            {
                "stream_id": snapshot.stream_id,
                "stream_type": stream_type,
                "version": snapshot.version,
                "schema_version": snapshot.schema_version,
                "state": jsonb.dumps(snapshot.state),
            },
        )

    def recorded(self, row: Any, keys: Mapping[str, bytes]) -> RecordedEvent:
        """The event of a row selected with COLUMNS, opened with its subject's key in
        `keys` (erased if it has none), upcast and decoded (raises if the payload no
        longer fits its class)."""
        (position, tx, stream_id, stream_type, version, type_name, schema_version, data,
         metadata, recorded_at, slot, key) = row  # fmt: skip
        if data is None:  # read without its payload (see read_all's `types`)
            return RecordedEvent(
                position, tx, stream_id, stream_type, version, type_name, {}, recorded_at,
                slot=slot, key=key,
            )  # fmt: skip
        sealed = data.get(ENVELOPE)
        if sealed is not None:
            data = self.registry.opened(type_name, data, keys.get(subject_of(data) or ""))
        data = self.registry.upcast(type_name, schema_version, data)
        return RecordedEvent(
            position=position,
            transaction_id=tx,
            stream_id=stream_id,
            stream_type=stream_type,
            version=version,
            type=type_name,
            data=data,
            recorded_at=recorded_at,
            decoded=self.registry.decode(type_name, data),
            decoded_metadata=Metadata.from_json(metadata),
            slot=slot,
            key=key,
            sealed=sealed,
        )


def _parked(row: Any) -> RecordedEvent:
    """A row of a parked key, undecoded: see read_all's `parked`."""
    position, tx, stream_id, stream_type, version, _, _, _, _, recorded_at, slot, key = row
    return RecordedEvent(
        position, tx, stream_id, stream_type, version, PARKED, {}, recorded_at, slot=slot, key=key
    )


def _unread(type_name: str) -> LookupError:
    return LookupError(f"this {type_name} was read without its payload: its reader skips the type")
