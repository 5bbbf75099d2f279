"""A subscription's partitions as the pages show them: each one's checkpoint, lag and
lease holder, and the writers that hold every subscription back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kernel.event_store import Checkpoint
from kernel.horizon import HELD_BACK_AFTER, RunningWriter
from kernel.subscriptions import PartitionStatus, SubscriptionStatus
from projections.read_side import ReadSide


@dataclass(frozen=True, slots=True)
class PartitionRow:
    partition: int
    checkpoint: Checkpoint
    lag_events: int
    lag_seconds: float
    state: str
    holder: str | None
    lease_expires_at: datetime | None
    lease_left: float | None  # seconds until the lease runs out unless renewed
    unheld_seconds: float | None
    stranded: bool  # work waiting and no holder for longer than a lease lasts
    failed_position: int | None
    last_error: str | None


def partition_rows(
    sub: SubscriptionStatus, lease_seconds: float, now: datetime
) -> list[PartitionRow]:
    stranded = {p.partition for p in sub.stranded(lease_seconds)}
    return [_row(p, p.partition in stranded, now) for p in sub.partitions]


def _row(part: PartitionStatus, stranded: bool, now: datetime) -> PartitionRow:
    expires = part.lease_expires_at
    return PartitionRow(
        partition=part.partition,
        checkpoint=part.checkpoint,
        lag_events=part.lag_events,
        lag_seconds=part.lag_seconds,
        state=part.state,
        holder=part.holder,
        lease_expires_at=expires,
        lease_left=max((expires - now).total_seconds(), 0.0) if expires else None,
        unheld_seconds=part.unheld_seconds,
        stranded=stranded,
        failed_position=part.failed_position,
        last_error=part.last_error,
    )


def held_back_by(read_side: ReadSide) -> list[RunningWriter]:
    """Writers that have held every subscription back for longer than HELD_BACK_AFTER."""
    return read_side.writers_holding_back(HELD_BACK_AFTER)
