"""Order-fulfillment saga state and the payment webhook inbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE order_fulfillment_sagas (
            order_id            text PRIMARY KEY,
            state               text NOT NULL,
            step                text NOT NULL,
            data                jsonb NOT NULL,
            deadline            timestamptz,
            last_transaction_id bigint NOT NULL,
            last_position       bigint NOT NULL,
            history             jsonb NOT NULL DEFAULT '[]',
            started_at          timestamptz NOT NULL DEFAULT now(),
            updated_at          timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX order_fulfillment_sagas_state ON order_fulfillment_sagas (state, started_at);
        CREATE INDEX order_fulfillment_sagas_deadline ON order_fulfillment_sagas (deadline)
            WHERE deadline IS NOT NULL;

        CREATE TABLE payment_webhook_inbox (
            provider_event_id   text PRIMARY KEY,
            received_at         timestamptz NOT NULL DEFAULT now(),
            payload             jsonb NOT NULL
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE payment_webhook_inbox; DROP TABLE order_fulfillment_sagas;")
