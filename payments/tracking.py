"""Where each payment stands with the provider, for the questions the log answers badly:
which payments have waited on the provider for too long (reconciliation), and which
order a provider's reference belongs to (a refund made in the provider's dashboard).

The payments handlers write a payment's row in the transaction that records its events,
so the row never disagrees with the log.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from payments.domain import AWAITING_PROVIDER, Payment

_TRACK = text(
    "INSERT INTO provider_payments (order_id, reference, status, call_key, awaiting_since)"
    " VALUES (:order, :reference, :status, :key, CASE WHEN :awaiting THEN now() END)"
    " ON CONFLICT (order_id) DO UPDATE SET"
    " reference = coalesce(EXCLUDED.reference, provider_payments.reference),"
    " status = EXCLUDED.status, call_key = EXCLUDED.call_key,"
    " awaiting_since = CASE WHEN NOT :awaiting THEN NULL"
    " WHEN provider_payments.status = EXCLUDED.status"
    " AND provider_payments.call_key IS NOT DISTINCT FROM EXCLUDED.call_key"
    " THEN provider_payments.awaiting_since ELSE now() END,"
    " checked_at = CASE WHEN provider_payments.status = EXCLUDED.status"
    " AND provider_payments.call_key IS NOT DISTINCT FROM EXCLUDED.call_key"
    " THEN provider_payments.checked_at END"
)
# A new call awaited (the next queued refund, in the status of the one before) waits
# from now: it is not overdue for the time its predecessor took.
_OVERDUE = text(
    "SELECT order_id, status, call_key FROM provider_payments"
    " WHERE awaiting_since < now() - make_interval(secs => :seconds)"
    " AND (checked_at IS NULL OR checked_at < now() - make_interval(secs => :seconds))"
    " ORDER BY coalesce(checked_at, awaiting_since) LIMIT :limit"
)
_CHECKED = text("UPDATE provider_payments SET checked_at = now() WHERE order_id = ANY(:orders)")
_ORDER_OF = text("SELECT order_id FROM provider_payments WHERE reference = :reference")
_SUMMARY = text(
    "SELECT status, count(*), extract(epoch FROM now() - min(awaiting_since))"
    " FROM provider_payments WHERE awaiting_since IS NOT NULL GROUP BY status"
)
AWAITING_STATUSES = tuple(sorted(AWAITING_PROVIDER))


@dataclass(frozen=True, slots=True)
class Awaiting:
    order_id: str
    status: str  # requested, pending or refunding
    call_key: str  # the idempotency key of the provider call it waits on


def track(conn: Connection, payment: Payment) -> None:
    """Write where `payment` stands now (call it after saving its new events)."""
    conn.execute(
        _TRACK,
        {
            "order": payment.id,
            "reference": payment.charge_reference or None,
            "status": payment.status,
            "key": payment.call_key,
            "awaiting": payment.status in AWAITING_PROVIDER,
        },
    )


def overdue(conn: Connection, older_than: float, limit: int = 100) -> list[Awaiting]:
    """Payments that have waited on the provider for more than `older_than` seconds and
    were not reconciled in that time either, those left alone longest first (so payments
    that stay pending for good, a 3-D Secure charge nobody completes, cannot crowd out
    the others)."""
    rows = conn.execute(_OVERDUE, {"seconds": older_than, "limit": limit}).all()
    return [Awaiting(order_id, status, key) for order_id, status, key in rows]


def checked(conn: Connection, order_ids: list[str]) -> None:
    """The payments' provider calls were just queued again by reconciliation."""
    conn.execute(_CHECKED, {"orders": order_ids})


@dataclass(frozen=True, slots=True)
class AwaitingSummary:
    counts: dict[str, int]  # by status
    oldest_seconds: float  # 0 when none waits


def awaiting_summary(conn: Connection) -> AwaitingSummary:
    """How many payments wait on the provider, by status, and the longest wait."""
    rows = conn.execute(_SUMMARY).all()
    counts = {status: int(count) for status, count, _ in rows}
    return AwaitingSummary(counts, max((float(age) for _, _, age in rows), default=0.0))


def order_of(conn: Connection, reference: str) -> str | None:
    """The order whose charge the provider knows as `reference`."""
    found: str | None = conn.execute(_ORDER_OF, {"reference": reference}).scalar_one_or_none()
    return found
