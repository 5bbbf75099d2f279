"""Operations: parked keys, and how long each saga has been at its step.

Parking: a subscription that keeps failing on an event of one key (an order) parks
that key's events and goes on with every other key.

`parked_keys` holds one row per parked key and subscription (the event it failed on,
the error and how often it was tried); `parked_events` the events of that key the
subscription passed over since, in log order, to be applied on a retry; `parking_actions`
who retried or skipped a parked key, and why. `subscriptions.failed_attempts` counts
the runs that failed on the same event, so a key is parked only after a bounded number
of them (a deadlock or a lost connection is not a reason to park).

`order_fulfillment_sagas.step_entered_at` says since when a saga is at its current step,
so a saga at any step for longer than that step's bound counts as stuck (sagas started
before this revision take their last update as that moment).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE subscriptions ADD COLUMN failed_attempts integer NOT NULL DEFAULT 0;

        CREATE TABLE parked_keys (
            subscription    text NOT NULL,
            key             text NOT NULL,
            partition       integer NOT NULL,
            transaction_id  bigint NOT NULL,
            position        bigint NOT NULL,
            event_type      text NOT NULL,
            error           text NOT NULL,
            attempts        integer NOT NULL,
            parked_at       timestamptz NOT NULL DEFAULT now(),
            retried_at      timestamptz,
            PRIMARY KEY (subscription, key)
        );
        CREATE INDEX parked_keys_by_partition ON parked_keys (subscription, partition);

        CREATE TABLE parked_events (
            subscription    text NOT NULL,
            key             text NOT NULL,
            transaction_id  bigint NOT NULL,
            position        bigint NOT NULL,
            PRIMARY KEY (subscription, key, transaction_id, position)
        );

        CREATE TABLE parking_actions (
            id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            subscription    text NOT NULL,
            key             text NOT NULL,
            action          text NOT NULL CHECK (action IN ('parked', 'retried', 'retry_failed',
                                                            'skipped')),
            actor           text NOT NULL,
            reason          text NOT NULL,
            events          integer NOT NULL,
            at              timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX parking_actions_by_key ON parking_actions (subscription, key, at);

        ALTER TABLE order_fulfillment_sagas ADD COLUMN step_entered_at timestamptz;
        UPDATE order_fulfillment_sagas SET step_entered_at = updated_at;
        ALTER TABLE order_fulfillment_sagas ALTER COLUMN step_entered_at SET NOT NULL,
            ALTER COLUMN step_entered_at SET DEFAULT now();
        CREATE INDEX order_fulfillment_sagas_at_step ON order_fulfillment_sagas
            (step, step_entered_at) WHERE step NOT IN ('shipped', 'cancelled');
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX order_fulfillment_sagas_at_step;
        ALTER TABLE order_fulfillment_sagas DROP COLUMN step_entered_at;
        DROP TABLE parking_actions;
        DROP TABLE parked_events;
        DROP TABLE parked_keys;
        ALTER TABLE subscriptions DROP COLUMN failed_attempts;
        """
    )
