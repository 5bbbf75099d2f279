"""Where each payment stands with the payment provider: one row per order's payment,
with the provider's reference of its charge and, while it waits on the provider (a charge
or refund asked and not answered, a charge pending), since when and the idempotency key
of the call it waits on, and when reconciliation last asked again. The payments context
writes the row in the transaction that records the payment's events; reconciliation
reads the payments that have waited too long, and a provider's webhook about a charge
finds its order by the reference.

Payments recorded before this revision are backfilled from the log.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE provider_payments (
            order_id        text PRIMARY KEY,
            reference       text,
            status          text NOT NULL,
            call_key        text,
            awaiting_since  timestamptz,
            checked_at      timestamptz
        );
        CREATE INDEX provider_payments_reference ON provider_payments (reference);
        CREATE INDEX provider_payments_awaiting ON provider_payments (awaiting_since)
            WHERE awaiting_since IS NOT NULL;

        INSERT INTO provider_payments (order_id, reference, status, call_key, awaiting_since)
        SELECT DISTINCT ON (stream_id)
               data ->> 'order_id',
               (SELECT charged.data ->> 'provider_reference' FROM events AS charged
                WHERE charged.stream_id = last.stream_id
                  AND charged.type IN ('PaymentPending', 'PaymentSucceeded')
                ORDER BY charged.version DESC LIMIT 1),
               CASE type WHEN 'PaymentPending' THEN 'pending'
                         WHEN 'PaymentSucceeded' THEN 'succeeded'
                         WHEN 'PaymentFailed' THEN 'failed'
                         WHEN 'PaymentRefunded' THEN 'refunded' END,
               CASE type WHEN 'PaymentPending'
                    THEN 'payment-' || (data ->> 'order_id') || '-charge-1' END,
               CASE type WHEN 'PaymentPending' THEN recorded_at END
        FROM events AS last
        WHERE stream_type = 'payment'
        ORDER BY stream_id, version DESC;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE provider_payments")
