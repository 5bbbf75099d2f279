"""Parked keys: the events of one key (an order) a subscription could not apply.

When a subscriber keeps failing on an event, the runner parks the event's key for that
subscription: the event and every later event of the key are passed over and
recorded here, and the subscription goes on with every other key. An operator then
retries the key (after a fix: its events are applied in order) or skips it with a
reason; `parking_actions` keeps who did what and why. See kernel.subscriptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from kernel.event_store import Checkpoint, RecordedEvent

SYSTEM = "system"  # the actor of a parking the runner did itself


@dataclass(frozen=True, slots=True)
class ParkedKey:
    subscription: str
    key: str
    partition: int
    failed_at: Checkpoint  # the event it failed on
    event_type: str
    error: str
    attempts: int
    parked_at: datetime
    retried_at: datetime | None
    events: int  # parked events waiting for a retry


@dataclass(frozen=True, slots=True)
class ParkingAction:
    subscription: str
    key: str
    action: str  # parked, retried, retry_failed or skipped
    actor: str
    reason: str
    events: int
    at: datetime


def park(
    conn: Connection,
    subscription: str,
    partition: int,
    failing: Checkpoint,
    *,
    key: str,
    event_type: str,
    error: str,
    attempts: int,
) -> None:
    """Park `key` for the subscription at the event it failed on (a no-op if it is)."""
    parked = conn.execute(
        text(
            """
            INSERT INTO parked_keys (subscription, key, partition, transaction_id, position,
                                     event_type, error, attempts)
            VALUES (:s, :key, :p, :tx, :position, :type, :error, :attempts)
            ON CONFLICT DO NOTHING RETURNING key
            """
        ),
        {
            "s": subscription,
            "key": key,
            "p": partition,
            "tx": failing.transaction_id,
            "position": failing.position,
            "type": event_type,
            "error": error,
            "attempts": attempts,
        },
    ).first()
    if parked is not None:
        note(conn, subscription, key, "parked", SYSTEM, error, 0)


def hold(conn: Connection, subscription: str, events: Sequence[RecordedEvent]) -> None:
    """Record events of parked keys the subscription passes over (again: a no-op)."""
    conn.execute(
        text(
            """
            INSERT INTO parked_events (subscription, key, transaction_id, position)
            SELECT :s, e.key, e.tx, e.position
            FROM unnest(CAST(:keys AS text[]), CAST(:txs AS bigint[]), CAST(:positions AS bigint[]))
                 AS e(key, tx, position)
            ON CONFLICT DO NOTHING
            """
        ),
        {
            "s": subscription,
            "keys": [e.key for e in events],
            "txs": [e.transaction_id for e in events],
            "positions": [e.position for e in events],
        },
    )


def find(conn: Connection, subscription: str, key: str) -> ParkedKey | None:
    rows = listing(conn, subscription=subscription, key=key)
    return rows[0] if rows else None


def held_events(conn: Connection, subscription: str, key: str) -> list[Checkpoint]:
    """The parked events of a key, in log order."""
    return [
        Checkpoint(tx, position)
        for tx, position in conn.execute(
            text(
                "SELECT transaction_id, position FROM parked_events"
                " WHERE subscription = :s AND key = :key ORDER BY transaction_id, position"
            ),
            {"s": subscription, "key": key},
        )
    ]


def unpark(
    conn: Connection, subscription: str, key: str, action: str, actor: str, reason: str
) -> int:
    """Let the key's events flow again (after a retry applied them, or to skip them);
    returns how many were parked."""
    released = conn.execute(
        text("DELETE FROM parked_events WHERE subscription = :s AND key = :key"),
        {"s": subscription, "key": key},
    ).rowcount
    conn.execute(
        text("DELETE FROM parked_keys WHERE subscription = :s AND key = :key"),
        {"s": subscription, "key": key},
    )
    note(conn, subscription, key, action, actor, reason, released)
    return int(released)


def failed_again(conn: Connection, subscription: str, key: str, actor: str, error: str) -> None:
    """A retry failed: the key stays parked with the new error."""
    conn.execute(
        text(
            "UPDATE parked_keys SET error = :error, attempts = attempts + 1, retried_at = now()"
            " WHERE subscription = :s AND key = :key"
        ),
        {"s": subscription, "key": key, "error": error},
    )
    note(conn, subscription, key, "retry_failed", actor, error, 0)


def note(
    conn: Connection,
    subscription: str,
    key: str,
    action: str,
    actor: str,
    reason: str,
    events: int,
) -> None:
    conn.execute(
        text(
            "INSERT INTO parking_actions (subscription, key, action, actor, reason, events)"
            " VALUES (:s, :key, :action, :actor, :reason, :events)"
        ),
        {
            "s": subscription,
            "key": key,
            "action": action,
            "actor": actor,
            "reason": reason,
            "events": events,
        },
    )


def listing(
    conn: Connection,
    *,
    subscription: str | None = None,
    key: str | None = None,
    limit: int = 200,
) -> list[ParkedKey]:
    """Parked keys, oldest first, with how many events each holds."""
    rows = conn.execute(
        text(
            """
            SELECT k.subscription, k.key, k.partition, k.transaction_id, k.position,
                   k.event_type, k.error, k.attempts, k.parked_at, k.retried_at,
                   (SELECT count(*) FROM parked_events e
                    WHERE e.subscription = k.subscription AND e.key = k.key)
            FROM parked_keys k
            WHERE (CAST(:s AS text) IS NULL OR k.subscription = :s)
              AND (CAST(:key AS text) IS NULL OR k.key = :key)
            ORDER BY k.parked_at, k.subscription, k.key LIMIT :limit
            """
        ),
        {"s": subscription, "key": key, "limit": limit},
    )
    return [_parked_key(row) for row in rows]


def counts(conn: Connection) -> dict[str, int]:
    """Parked keys per subscription (those with any)."""
    rows = conn.execute(
        text("SELECT subscription, count(*) FROM parked_keys GROUP BY subscription")
    )
    return {name: int(n) for name, n in rows}


def actions(conn: Connection, subscription: str, key: str) -> list[ParkingAction]:
    rows = conn.execute(
        text(
            "SELECT subscription, key, action, actor, reason, events, at FROM parking_actions"
            " WHERE subscription = :s AND key = :key ORDER BY at, id"
        ),
        {"s": subscription, "key": key},
    )
    return [ParkingAction(*row) for row in rows]


def forget(conn: Connection, subscription: str) -> None:
    """Delete what a retired subscription (a read model's old generation) parked."""
    for table in ("parked_events", "parked_keys"):
        conn.execute(text(f"DELETE FROM {table} WHERE subscription = :s"), {"s": subscription})


def _parked_key(row: Any) -> ParkedKey:
    (subscription, key, partition, tx, position, event_type, error, attempts, parked_at,
     retried_at, events) = row  # fmt: skip
    return ParkedKey(
        subscription, key, partition, Checkpoint(tx, position), event_type, error, attempts,
        parked_at, retried_at, int(events),
    )  # fmt: skip
