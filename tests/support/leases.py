"""A lease over the whole log, for tests that hand a subscriber batches themselves."""

from __future__ import annotations

from sqlalchemy import text

from config.bootstrap import Application
from kernel.leases import Lease, Leases
from kernel.subscriptions import Subscriber


def sole_lease(application: Application, subscriber: Subscriber) -> Lease:
    """Partition 0 of the subscriber run as a single partition (recorded so now; it must
    not have run as more), held by this test for ten minutes (a lease the test took
    before is ended): every event is its to apply."""
    leases = Leases("test", 600)
    with application.engine.begin() as conn:
        count = leases.partitions(conn, subscriber.name, 1)
        assert count == 1, f"{subscriber.name} already runs as {count} partitions"
        conn.execute(
            text(
                "UPDATE subscription_partitions SET expires_at = clock_timestamp()"
                " WHERE name = :name AND holder = 'test'"
            ),
            {"name": subscriber.name},
        )
        lease = leases.take(conn, subscriber.name, 0)
    assert isinstance(lease, Lease), f"{subscriber.name} is held by another runner"
    return lease


def let_go(application: Application, lease: Lease) -> None:
    """End a lease `sole_lease` gave, so runners may take the partition at once."""
    with application.engine.begin() as conn:
        Leases(lease.holder, lease.seconds).release(conn, lease)
