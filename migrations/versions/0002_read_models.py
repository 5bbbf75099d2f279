"""Read models: order detail, catalog, sales analytics, and their generations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE projection_generations (
            name                text PRIMARY KEY,
            active              integer NOT NULL DEFAULT 1,
            building            integer,
            rebuild_started_at  timestamptz
        );

        CREATE INDEX events_order_id ON events ((data ->> 'order_id'));

        CREATE TABLE order_details (
            generation      integer NOT NULL,
            order_id        text NOT NULL,
            customer_id     text NOT NULL,
            status          text NOT NULL,
            placed_at       timestamptz NOT NULL,
            updated_at      timestamptz NOT NULL,
            document        jsonb NOT NULL,
            PRIMARY KEY (generation, order_id)
        );

        CREATE TABLE catalog_products (
            generation      integer NOT NULL,
            sku             text NOT NULL,
            name            text NOT NULL,
            price_amount    bigint NOT NULL,
            currency        text NOT NULL,
            on_hand         integer NOT NULL,
            available       integer NOT NULL,
            stream_version  integer NOT NULL,
            updated_at      timestamptz NOT NULL,
            PRIMARY KEY (generation, sku)
        );

        CREATE TABLE sales_orders (
            generation      integer NOT NULL,
            order_id        text NOT NULL,
            customer_id     text NOT NULL,
            currency        text NOT NULL,
            total           bigint NOT NULL,
            lines           jsonb NOT NULL,
            confirmed_on    date,
            PRIMARY KEY (generation, order_id)
        );

        CREATE TABLE sales_daily (
            generation      integer NOT NULL,
            day             date NOT NULL,
            currency        text NOT NULL,
            orders          integer NOT NULL DEFAULT 0,
            revenue         bigint NOT NULL DEFAULT 0,
            cancellations   integer NOT NULL DEFAULT 0,
            refunds         integer NOT NULL DEFAULT 0,
            refunded        bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (generation, day, currency)
        );

        CREATE TABLE sales_products (
            generation      integer NOT NULL,
            sku             text NOT NULL,
            currency        text NOT NULL,
            name            text NOT NULL,
            units           bigint NOT NULL DEFAULT 0,
            revenue         bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (generation, sku, currency)
        );

        CREATE TABLE sales_customers (
            generation      integer NOT NULL,
            customer_id     text NOT NULL,
            currency        text NOT NULL,
            orders          integer NOT NULL DEFAULT 0,
            total_spent     bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (generation, customer_id, currency)
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE sales_customers;
        DROP TABLE sales_products;
        DROP TABLE sales_daily;
        DROP TABLE sales_orders;
        DROP TABLE catalog_products;
        DROP TABLE order_details;
        DROP INDEX events_order_id;
        DROP TABLE projection_generations;
        """
    )
