"""Event store, snapshots, processed commands and subscription checkpoints.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE events (
            position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
            stream_id       text NOT NULL,
            stream_type     text NOT NULL,
            version         integer NOT NULL CHECK (version > 0),
            type            text NOT NULL,
            schema_version  integer NOT NULL DEFAULT 1,
            data            jsonb NOT NULL,
            metadata        jsonb NOT NULL,
            recorded_at     timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT events_stream_version UNIQUE (stream_id, version)
        );
        CREATE INDEX events_log_order ON events (transaction_id, position);
        CREATE INDEX events_correlation ON events ((metadata ->> 'correlation_id'));

        CREATE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'events are append-only (% refused)', TG_OP;
        END $$;
        CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
            FOR EACH ROW EXECUTE FUNCTION events_are_append_only();

        CREATE TABLE snapshots (
            stream_id       text PRIMARY KEY,
            stream_type     text NOT NULL,
            version         integer NOT NULL,
            schema_version  integer NOT NULL,
            state           jsonb NOT NULL,
            taken_at        timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE processed_commands (
            command_id      text PRIMARY KEY,
            command_type    text NOT NULL,
            fingerprint     text NOT NULL,
            result          jsonb,
            processed_at    timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE subscriptions (
            name                    text PRIMARY KEY,
            transaction_id          bigint NOT NULL DEFAULT 0,
            position                bigint NOT NULL DEFAULT 0,
            updated_at              timestamptz NOT NULL DEFAULT now(),
            failed_transaction_id   bigint,
            failed_position         bigint,
            last_error              text,
            failed_at               timestamptz
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE subscriptions;
        DROP TABLE processed_commands;
        DROP TABLE snapshots;
        DROP TABLE events;
        DROP FUNCTION events_are_append_only();
        """
    )
