"""Sales analytics: `sales_orders.withdrawn` says whether a confirmed order's sale was
taken back out of its products' and customer's figures (cancelled, or refunded after
it shipped), so a cancellation and a refund of the same order take it out once.

Rows from before this revision are NULL: what old code did to them is not recorded,
so they keep the old rule (a cancellation takes the sale out, a refund does not) until
the read model is rebuilt (`shop projections rebuild sales_analytics`), which applies
the new one to every order.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE sales_orders ADD COLUMN withdrawn boolean")


def downgrade() -> None:
    op.execute("ALTER TABLE sales_orders DROP COLUMN withdrawn")
