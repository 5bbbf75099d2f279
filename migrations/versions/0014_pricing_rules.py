"""The pricing context's lookup tables: what the checkout reads in one statement inside
the placing transaction (tax rates, promotions in force, list prices), and the coupons
with their redemption counts for the admin list. The pricing handlers write them in the
transactions of the commands that change them, like order_holds: they are never behind
the log. A coupon's usage limit is not decided here but on its stream.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE pricing_tax_rates (
            country             text PRIMARY KEY,
            rate_bp             integer NOT NULL CHECK (rate_bp BETWEEN 0 AND 10000),
            prices_include_tax  boolean NOT NULL
        );
        CREATE TABLE pricing_list_prices (
            currency    text NOT NULL,
            sku         text NOT NULL,
            amount      bigint NOT NULL CHECK (amount >= 0),
            PRIMARY KEY (currency, sku)
        );
        CREATE TABLE pricing_promotions (
            promotion_id    text PRIMARY KEY,
            starts_at       timestamptz NOT NULL,
            ends_at         timestamptz,
            ended           boolean NOT NULL DEFAULT false,
            terms           jsonb NOT NULL
        );
        CREATE INDEX pricing_promotions_running ON pricing_promotions (starts_at)
            WHERE NOT ended;
        CREATE TABLE pricing_coupons (
            code            text PRIMARY KEY,
            disabled        boolean NOT NULL DEFAULT false,
            redemptions     integer NOT NULL DEFAULT 0,
            terms           jsonb NOT NULL
        );
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TABLE pricing_coupons, pricing_promotions, pricing_list_prices, pricing_tax_rates"
    )
