"""Customer accounts and sessions: the write side's credentials, outside the event log.

`customer_accounts` holds one row per customer: the SHA-256 digest of the normalised email
(unique: the set validation that keeps emails unique, checked by RegisterCustomer in its
own transaction; a digest, so this table holds no plaintext personal data) and the argon2
hash of the password. `customer_sessions` holds one row per sign-in: the SHA-256 digests
of its current access and refresh tokens (never the tokens), their expiry, the digest of
the refresh token the last renewal replaced (presented again, it ends the session: one of
two holders of it stole it), and when the
session was ended, if it was (its refresh expiry is then moved to that moment: the sweep
deletes sessions a day after their refresh expiry, indexed).

Backfill: every customer registered before this revision gets an account with the digest
of the email its CustomerRegistered recorded (already normalised), so those emails stay
taken, and no password (NULL): such an account cannot sign in until it gets one.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE customer_accounts (
            customer_id          text PRIMARY KEY,
            email_digest         bytea NOT NULL UNIQUE,
            password_hash        text,
            created_at           timestamptz NOT NULL DEFAULT now(),
            password_changed_at  timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE customer_sessions (
            session_id             uuid PRIMARY KEY,
            customer_id            text NOT NULL
                                   REFERENCES customer_accounts ON DELETE CASCADE,
            access_hash            bytea NOT NULL UNIQUE,
            access_expires_at      timestamptz NOT NULL,
            refresh_hash           bytea NOT NULL UNIQUE,
            refresh_expires_at     timestamptz NOT NULL,
            replaced_refresh_hash  bytea UNIQUE,
            created_at             timestamptz NOT NULL DEFAULT now(),
            revoked_at             timestamptz
        );
        CREATE INDEX customer_sessions_customer ON customer_sessions (customer_id);
        -- Ending a session moves its refresh expiry to then: dead sessions are found here.
        CREATE INDEX customer_sessions_refresh_expiry ON customer_sessions (refresh_expires_at);

        INSERT INTO customer_accounts (customer_id, email_digest, created_at, password_changed_at)
        SELECT DISTINCT ON (data ->> 'email')
               data ->> 'customer_id', sha256(convert_to(data ->> 'email', 'UTF8')),
               recorded_at, recorded_at
        FROM events
        WHERE type = 'CustomerRegistered'
        ORDER BY data ->> 'email', position
        ON CONFLICT DO NOTHING;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE customer_sessions; DROP TABLE customer_accounts")
