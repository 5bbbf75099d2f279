"""Named admin accounts, and the indexes the audit trail reads.

`admin_accounts` holds each named admin: a login, a role (`viewer` reads, `operator`
also acts) and the SHA-256 of their current token (the token is shown once; the unique
index makes verifying one a single lookup). A disabled admin keeps their row: the
events they recorded name their id as the actor (`admin:<admin_id>`), which the audit
trail resolves to their login.

The audit trail lists admin actions newest first: the events whose metadata names an
admin as the actor, and the people's parking actions. Both get a partial index over just
those rows, so a page of it reads a few index entries, however long the log. The events
index is built CONCURRENTLY: the log takes writes while it is built (an index is no
change to the append-only events).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
# The Audit page's: every admin's actions newest first, and one admin's.
AUDIT_INDEXES = {
    "events_admin_actions": "recorded_at, position",
    "events_admin_actions_by_actor": "(metadata ->> 'actor'), recorded_at, position",
}
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE admin_accounts (
            admin_id    uuid PRIMARY KEY,
            login       text NOT NULL UNIQUE,
            role        text NOT NULL CHECK (role IN ('viewer', 'operator')),
            token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
            created_at  timestamptz NOT NULL DEFAULT now(),
            created_by  text NOT NULL,
            disabled_at timestamptz
        );

        CREATE INDEX parking_actions_by_people ON parking_actions (at, id)
            WHERE action <> 'parked';
        """
    )
    with op.get_context().autocommit_block():
        for name, columns in AUDIT_INDEXES.items():
            # A build that failed part-way leaves an invalid index behind, which the planner
            # never uses: drop any leftover and build it again.
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(
                f"CREATE INDEX CONCURRENTLY {name} ON events ({columns})"
                " WHERE (metadata ->> 'actor') LIKE 'admin%'"
            )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name in AUDIT_INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    op.execute(
        """
        DROP INDEX parking_actions_by_people;
        DROP TABLE admin_accounts;
        """
    )
