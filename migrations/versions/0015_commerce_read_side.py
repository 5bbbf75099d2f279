"""The read side of commerce depth: sales figures by part and returns, and the
storefront's product search.

Sales analytics: `sales_orders` keeps each order's subtotal, discount, tax and shipping
(as OrderPlaced charged them), `sales_daily` sums them per day of confirmation (`gross`
is the subtotals) and `sales_products.returned` counts units sent back and accepted. Rows
from before this revision read 0 until the read model is rebuilt, which workers running
its new version (2) do on their own.

Product search: `q` matches names and SKUs with ILIKE '%...%'. With pg_trgm (a contrib
extension most servers ship; trusted, so the database owner may create it) trigram GIN
indexes serve that match; a server without it answers the same by scanning the catalog,
small enough that this is fine.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from alembic import op

revision = "0015"
down_revision = "0013"  # lead: chain after 0014 at merge
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE sales_orders
            ADD COLUMN subtotal bigint NOT NULL DEFAULT 0,
            ADD COLUMN discount_total bigint NOT NULL DEFAULT 0,
            ADD COLUMN tax_total bigint NOT NULL DEFAULT 0,
            ADD COLUMN shipping bigint NOT NULL DEFAULT 0;

        ALTER TABLE sales_daily
            ADD COLUMN gross bigint NOT NULL DEFAULT 0,
            ADD COLUMN discounts bigint NOT NULL DEFAULT 0,
            ADD COLUMN tax bigint NOT NULL DEFAULT 0,
            ADD COLUMN shipping bigint NOT NULL DEFAULT 0;

        ALTER TABLE sales_products ADD COLUMN returned bigint NOT NULL DEFAULT 0;

        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
                CREATE EXTENSION IF NOT EXISTS pg_trgm;
                CREATE INDEX catalog_products_name_trgm
                    ON catalog_products USING gin (name gin_trgm_ops);
                CREATE INDEX catalog_products_sku_trgm
                    ON catalog_products USING gin (sku gin_trgm_ops);
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE USING MESSAGE = 'product search scans the catalog: ' || SQLERRM;
        END
        $$;
        """
    )


def downgrade() -> None:
    # The extension stays: other objects may use it by now.
    op.execute(
        """
        DROP INDEX IF EXISTS catalog_products_sku_trgm;
        DROP INDEX IF EXISTS catalog_products_name_trgm;
        ALTER TABLE sales_products DROP COLUMN returned;
        ALTER TABLE sales_daily
            DROP COLUMN shipping, DROP COLUMN tax, DROP COLUMN discounts, DROP COLUMN gross;
        ALTER TABLE sales_orders
            DROP COLUMN shipping, DROP COLUMN tax_total, DROP COLUMN discount_total,
            DROP COLUMN subtotal;
        """
    )
