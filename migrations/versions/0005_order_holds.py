"""What each customer holds: one row per order placed and not yet confirmed or cancelled,
with the units it reserves. The orders context writes and deletes these rows in the
transactions of PlaceOrder, ConfirmOrder and CancelOrder, under a lock per customer, so
the caps on pending orders and reserved units cannot be raced past.

Orders open when this revision runs are backfilled from the log.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE order_holds (
            order_id        text PRIMARY KEY,
            customer_id     text NOT NULL,
            units           integer NOT NULL CHECK (units > 0),
            placed_at       timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX order_holds_customer ON order_holds (customer_id);

        INSERT INTO order_holds (order_id, customer_id, units, placed_at)
        SELECT placed.data ->> 'order_id', placed.data ->> 'customer_id',
               (SELECT sum((line ->> 'quantity')::int)
                FROM jsonb_array_elements(placed.data -> 'lines') AS line),
               placed.recorded_at
        FROM events AS placed
        WHERE placed.type = 'OrderPlaced'
          AND NOT EXISTS (
              SELECT FROM events AS ended
              WHERE ended.stream_id = placed.stream_id
                AND ended.type IN ('OrderConfirmed', 'OrderCancelled')
          );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE order_holds")
