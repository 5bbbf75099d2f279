"""The audit trail: what the admins did, newest first.

Two sources, merged: the events whose metadata names an admin as the actor (every
admin command records `admin:<admin_id>`, or `admin:bootstrap` for ADMIN_TOKEN), and
the people's parking actions (retries and skips; a parking by the runner is the
system's). Each is read through a partial index over just those rows (migration 0012),
so a page costs a few index entries however long the log is. Pages are keyset pages
on (time, source, id): a cursor says where the previous page ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

EVENT, PARKING = 0, 1  # the sources, in the order they come at the same moment (reversed)
_SOURCES = (EVENT, PARKING)
_PAST_EVERY_ID = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the moment, source and id of its last entry."""

    at: datetime
    source: int
    id: int

    def token(self) -> str:
        micros = (self.at - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}.{self.source}.{self.id}"

    @classmethod
    def parse(cls, token: str) -> Cursor:
        """Raises ValueError for a token no page gave (out of range included)."""
        micros, source, id_ = (int(part) for part in token.split("."))
        if source not in _SOURCES or not 0 <= id_ <= _PAST_EVERY_ID:
            raise ValueError(token)
        try:
            return cls(_EPOCH + timedelta(microseconds=micros), source, id_)
        except OverflowError:
            raise ValueError(token) from None


@dataclass(frozen=True, slots=True)
class AdminAction:
    at: datetime
    actor: str  # as recorded: admin:<admin_id>, admin:bootstrap, cli:<user>...
    what: str  # the event's type, or the parking action (retried, skipped...)
    order_id: str | None
    sku: str | None
    detail: str  # a tracking number, a reason, a subscription
    cursor: Cursor


def page(
    conn: Connection, *, before: Cursor | None = None, limit: int = 50, actor: str | None = None
) -> tuple[list[AdminAction], Cursor | None]:
    """Up to `limit` admin actions older than `before`, newest first, only `actor`'s if
    given; with the cursor of the next page (None on the last)."""
    found = sorted(
        _events(conn, before, limit + 1, actor) + _parking(conn, before, limit + 1, actor),
        key=lambda action: (action.at, action.cursor.source, action.cursor.id),
        reverse=True,
    )
    taken = found[:limit]
    return taken, (taken[-1].cursor if len(found) > limit else None)


def _bound(before: Cursor | None, source: int) -> tuple[str, dict[str, Any]]:
    """The keyset condition on (time, id) for `source`'s rows past `before`: at the same
    moment, a source that sorts later comes entirely after it, an earlier one not at all."""
    if before is None:
        return "", {}
    if source == before.source:
        id_ = before.id
    elif source < before.source:
        id_ = _PAST_EVERY_ID
    else:
        id_ = 0
    condition = " AND ({at}, {id}) < (:before_at, :before_id)"
    return condition, {"before_at": before.at, "before_id": id_}


def _events(
    conn: Connection, before: Cursor | None, limit: int, actor: str | None
) -> list[AdminAction]:
    bound, values = _bound(before, EVENT)
    only = " AND metadata ->> 'actor' = :actor" if actor else ""
    rows = conn.execute(
        text(
            """
            SELECT recorded_at, position, type, metadata ->> 'actor', data ->> 'order_id',
                   data ->> 'sku', data ->> 'tracking_number', data ->> 'reason',
                   data ->> 'customer_id',
                   data ->> 'quantity', data #>> '{price,amount}', data #>> '{price,currency}'
            FROM events
            WHERE (metadata ->> 'actor') LIKE 'admin%'"""
            + only
            + bound.format(at="recorded_at", id="position")
            + " ORDER BY recorded_at DESC, position DESC LIMIT :limit"
        ),
        {"limit": limit, "actor": actor, **values},
    )
    return [
        AdminAction(at, who, type_, order_id, sku, _detail(*said), Cursor(at, EVENT, position))
        for at, position, type_, who, order_id, sku, *said in rows
    ]


def _detail(
    tracking: str | None,
    reason: str | None,
    customer: str | None,
    quantity: str | None,
    amount: str | None,
    currency: str | None,
) -> str:
    """What an admin's event says beyond its type: a tracking number, a reason, the
    units restocked or the new price (prices are in minor units, two decimals)."""
    if tracking or reason:
        return tracking or reason or ""
    if customer:  # an order's events carry their customer too: those said what matters
        return f"customer {customer}"
    if quantity:
        return f"{int(quantity):+d} units"
    if amount and currency:
        return f"price {currency} {int(amount) / 100:.2f}"
    return ""


def _parking(
    conn: Connection, before: Cursor | None, limit: int, actor: str | None
) -> list[AdminAction]:
    bound, values = _bound(before, PARKING)
    only = " AND actor = :actor" if actor else ""
    rows = conn.execute(
        text(
            """
            SELECT at, id, action, actor, key, subscription, reason FROM parking_actions
            WHERE action <> 'parked'"""
            + only
            + bound.format(at="at", id="id")
            + " ORDER BY at DESC, id DESC LIMIT :limit"
        ),
        {"limit": limit, "actor": actor, **values},
    )
    return [
        AdminAction(
            at, who, f"parked key {action}", key, None,
            f"{subscription}: {reason}" if reason else subscription, Cursor(at, PARKING, id_),
        )
        for at, id_, action, who, key, subscription, reason in rows
    ]  # fmt: skip
