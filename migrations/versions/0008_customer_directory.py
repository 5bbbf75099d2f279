"""Customer directory: a read model of every registered customer's name and email, by
generation like the other read models, fed by CustomerRegistered. The admin dashboard
shows who placed each order and finds a customer's orders by email.

No backfill: a read model without a checkpoint replays the log from its first event,
so the workers fill it once this revision is in.

Revision ID: 0008
Revises: 0006 for now; 0007 (the parking tables) once that lands on main
Create Date: 2026-12-06
"""

from alembic import op

revision = "0008"
# Follows 0007 (the parking tables) on main: set down_revision = "0007" when merging.
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE customer_directory (
            generation      integer NOT NULL,
            customer_id     text NOT NULL,
            email           text NOT NULL,
            name            text NOT NULL,
            registered_at   timestamptz NOT NULL,
            PRIMARY KEY (generation, customer_id)
        );
        CREATE INDEX customer_directory_email ON customer_directory (generation, email);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE customer_directory")
