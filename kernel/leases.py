"""Leases on subscription partitions, with fencing.

Each partition of a subscription has one row in `subscription_partitions`; a runner
takes it for a while (the lease), and any runner on any host may take it once it is
free or its lease ran out. Each take raises the row's fence. A holder renews its lease
in the same transaction as each batch it commits (`Lease.confirm`), which also checks
that the fence is still its own: a holder that froze, lost its connection or hung past
its lease finds it taken on waking and cannot commit anything more.

A lease also ends at once when the holder's database session is gone (a killed worker's
connection closes): the row names the session's backend, and a taker finds it missing
from pg_stat_activity. A frozen or partitioned holder keeps its session and so waits
out its lease.

A runner that finds a partition held marks it `wanted`; the holder, before letting go,
sees the mark and drains again, so events committed during its drain are not left for
the next sweep.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from kernel.errors import Fenced
from kernel.partitions import check_count, slots_of


@dataclass(frozen=True, slots=True)
class Lease:
    """A partition held by `holder` under `fence` for `seconds` after each renewal."""

    name: str
    partition: int
    partitions: int
    holder: str
    fence: int
    seconds: float
    failed: bool = False  # the partition stopped at a failing event when it was taken
    parked: tuple[str, ...] = ()  # the keys parked in the partition when it was taken

    @property
    def slots(self) -> list[int]:
        return slots_of(self.partition, self.partitions)

    def confirm(self, conn: Connection) -> None:
        """Renew the lease inside the caller's transaction, which may then commit; raises
        Fenced (the caller must roll back) if it was lost."""
        renewed = conn.execute(_RENEW, self._params()).first()
        if renewed is None:
            raise Fenced(f"{self.name}#{self.partition}: lease {self.fence} lost by {self.holder}")

    def _params(self) -> dict[str, object]:
        return {
            "name": self.name,
            "partition": self.partition,
            "holder": self.holder,
            "fence": self.fence,
            "seconds": self.seconds,
        }


@dataclass(frozen=True, slots=True)
class Held:
    """A partition someone else holds, until `expires_at` unless renewed."""

    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PartitionHolding:
    """Who holds one partition, as the lease table says."""

    name: str
    partition: int
    partitions: int
    holder: str | None  # None: free, or its lease ran out
    fence: int
    expires_at: datetime | None
    free_since: datetime | None  # when it was let go or its lease ran out


def recorded_count(conn: Connection, name: str) -> int | None:
    """How many partitions subscription `name` was recorded with (None: not yet run)."""
    found = conn.execute(_COUNT, {"name": name}).scalar()
    return None if found is None else int(found)


def default_holder() -> str:
    """This process, as status pages name lease holders: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Leases:
    def __init__(self, holder: str, seconds: float) -> None:
        self.holder = holder
        self.seconds = seconds

    def partitions(self, conn: Connection, name: str, default: int) -> int:
        """How many partitions subscription `name` runs as: as first recorded, else
        `default` (recorded now)."""
        found = recorded_count(conn, name)
        if found is None:
            conn.execute(_REGISTER, {"name": name, "partitions": check_count(default)})
            found = conn.execute(_COUNT, {"name": name}).scalar_one()
        return int(found)

    def take(self, conn: Connection, name: str, partition: int) -> Lease | Held | None:
        """The lease on the partition if it was free (or its holder's ran out); else who
        holds it until when, after marking it wanted so its holder drains once more
        before letting go; None if the partition does not exist."""
        params = {"name": name, "partition": partition, "holder": self.holder}
        row = conn.execute(_TAKE, params | {"seconds": self.seconds}).first()
        if row is None:
            return None
        if not row.taken:
            return Held(row.expires_at)
        return Lease(
            name, partition, row.partitions, self.holder, row.fence, self.seconds, row.failed,
            tuple(row.parked),
        )  # fmt: skip

    def release(self, conn: Connection, lease: Lease) -> bool:
        """Let go of the lease, unless another runner wanted the partition meanwhile: then
        keep it (renewed) and return True, for the holder to drain again."""
        released = conn.execute(_RELEASE, lease._params()).first()
        if released is not None:
            return False
        kept = conn.execute(_KEEP_WANTED, lease._params()).first()
        return kept is not None

    def holdings(self, conn: Connection, names: list[str]) -> list[PartitionHolding]:
        return [PartitionHolding(*row) for row in conn.execute(_HOLDINGS, {"names": names})]


_COUNT = text("SELECT max(partitions) FROM subscription_partitions WHERE name = :name")
_REGISTER = text(
    """
    INSERT INTO subscription_partitions (name, partition, partitions)
    SELECT :name, p, :partitions FROM generate_series(0, :partitions - 1) AS p
    WHERE NOT EXISTS (SELECT FROM subscription_partitions WHERE name = :name)
    ON CONFLICT DO NOTHING
    """
)
_FREE = """(holder IS NULL OR expires_at < clock_timestamp()
    OR NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = holder_backend))"""
_TAKE = text(
    f"""
    WITH old AS (
        SELECT {_FREE} AS free FROM subscription_partitions
        WHERE name = :name AND partition = :partition FOR UPDATE
    )
    UPDATE subscription_partitions AS p SET
        holder = CASE WHEN old.free THEN :holder ELSE p.holder END,
        holder_backend = CASE WHEN old.free THEN pg_backend_pid() ELSE p.holder_backend END,
        fence = CASE WHEN old.free THEN p.fence + 1 ELSE p.fence END,
        taken_at = CASE WHEN old.free THEN clock_timestamp() ELSE p.taken_at END,
        expires_at = CASE WHEN old.free
            THEN clock_timestamp() + make_interval(secs => :seconds) ELSE p.expires_at END,
        wanted = NOT old.free
    FROM old WHERE p.name = :name AND p.partition = :partition
    RETURNING old.free AS taken, p.fence, p.partitions, p.expires_at,
        EXISTS (SELECT FROM subscriptions AS s WHERE s.name = :name
                AND s.partition = :partition AND s.last_error IS NOT NULL) AS failed,
        ARRAY(SELECT k.key FROM parked_keys AS k WHERE k.subscription = :name
              AND k.partition = :partition) AS parked
    """
)
_RENEW = text(
    """
    UPDATE subscription_partitions
    SET expires_at = clock_timestamp() + make_interval(secs => :seconds)
    WHERE name = :name AND partition = :partition AND holder = :holder AND fence = :fence
      AND expires_at > clock_timestamp()
    RETURNING fence
    """
)
_RELEASE = text(
    """
    UPDATE subscription_partitions SET holder = NULL, expires_at = clock_timestamp()
    WHERE name = :name AND partition = :partition AND holder = :holder AND fence = :fence
      AND NOT wanted
    RETURNING fence
    """
)
_KEEP_WANTED = text(
    """
    UPDATE subscription_partitions
    SET wanted = false, expires_at = clock_timestamp() + make_interval(secs => :seconds)
    WHERE name = :name AND partition = :partition AND holder = :holder AND fence = :fence
      AND expires_at > clock_timestamp()
    RETURNING fence
    """
)
_HOLDINGS = text(
    f"""
    SELECT name, partition, partitions,
           CASE WHEN {_FREE} THEN NULL ELSE holder END, fence,
           CASE WHEN {_FREE} THEN NULL ELSE expires_at END,
           CASE WHEN {_FREE} THEN coalesce(expires_at, taken_at) END
    FROM subscription_partitions WHERE name = ANY(:names) ORDER BY name, partition
    """
)
