"""Partitioned subscriptions: each event's partition key and slot, a checkpoint per
partition, and the partition leases that workers take.

An event's key is the order id for everything about an order (the events of its order,
reservation and payment streams), else its stream id; its
slot (0-63) is a hash of the key, the same in SQL here and in kernel.partitions.
Checkpoints written before this revision become partition 0 of 1.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE events ADD COLUMN partition_key text, ADD COLUMN slot smallint;
        ALTER TABLE events DISABLE TRIGGER events_append_only;
        UPDATE events SET partition_key = CASE
            WHEN stream_type IN ('order', 'reservation', 'payment')
            THEN coalesce(data ->> 'order_id', stream_id) ELSE stream_id END;
        UPDATE events SET slot =
            (('x' || substr(md5(partition_key), 1, 8))::bit(32)::int & 2147483647) % 64;
        ALTER TABLE events ENABLE TRIGGER events_append_only;
        ALTER TABLE events ALTER COLUMN partition_key SET NOT NULL,
                           ALTER COLUMN slot SET NOT NULL,
                           ADD CONSTRAINT events_slot_range CHECK (slot BETWEEN 0 AND 63);
        CREATE INDEX events_by_slot ON events (slot, transaction_id, position);

        ALTER TABLE subscriptions ADD COLUMN partition integer NOT NULL DEFAULT 0;
        ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_pkey;
        ALTER TABLE subscriptions ADD PRIMARY KEY (name, partition);

        CREATE TABLE subscription_partitions (
            name        text NOT NULL,
            partition   integer NOT NULL,
            partitions  integer NOT NULL CHECK (partitions BETWEEN 1 AND 64),
            holder      text,
            holder_backend integer,
            fence       bigint NOT NULL DEFAULT 0,
            expires_at  timestamptz,
            taken_at    timestamptz,
            wanted      boolean NOT NULL DEFAULT false,
            PRIMARY KEY (name, partition),
            CHECK (partition >= 0 AND partition < partitions)
        );
        INSERT INTO subscription_partitions (name, partition, partitions)
        SELECT name, 0, 1 FROM subscriptions;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE subscription_partitions;
        DELETE FROM subscriptions WHERE partition <> 0;
        ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_pkey;
        ALTER TABLE subscriptions DROP COLUMN partition;
        ALTER TABLE subscriptions ADD PRIMARY KEY (name);
        DROP INDEX events_by_slot;
        ALTER TABLE events DROP COLUMN slot, DROP COLUMN partition_key;
        """
    )
