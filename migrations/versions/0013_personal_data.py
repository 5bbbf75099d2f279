"""Personal data sealed with a key per customer (see kernel/personal_data.py).

- `personal_data_keys`: one AES-256 key per customer; forgetting a customer sets it to
  NULL (a tombstone) and their sealed fields read as erased from then on.
- Events written before this (CustomerRegistered and OrderPlaced at schema version 1)
  hold names, emails and addresses in the clear, which no erasure could reach in an
  append-only log. This revision seals them once, in place, with a key made per
  customer, and marks them version 2: the one time the append-only trigger is lifted.
- Read models and snapshots that held those fields in the clear lose them here; the
  read models' new versions make workers rebuild them, sealed, from the log.
- An index finds a customer's orders in the log (for their export and erasure).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

from kernel.personal_data import ENVELOPE, new_key, opened_payload, sealed_payload
from orders.events import CustomerRegistered, OrderPlaced

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SEALED_TYPES = {cls.__name__: cls for cls in (CustomerRegistered, OrderPlaced)}
BATCH = 1000


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE personal_data_keys (
            subject_id      text PRIMARY KEY,
            key             bytea,  -- NULL once the subject is forgotten
            created_at      timestamptz NOT NULL DEFAULT now(),
            forgotten_at    timestamptz,
            CHECK ((key IS NULL) = (forgotten_at IS NOT NULL))
        );
        CREATE INDEX events_orders_of_customer ON events ((data ->> 'customer_id'), position)
            WHERE type = 'OrderPlaced';

        DELETE FROM snapshots WHERE stream_type = 'customer';
        UPDATE order_details SET document = document - 'shipping_address';
        DROP INDEX customer_directory_email;
        ALTER TABLE customer_directory
            DROP COLUMN email,
            DROP COLUMN name,
            ADD COLUMN email_digest bytea,
            ADD COLUMN personal jsonb;
        CREATE INDEX customer_directory_email ON customer_directory (generation, email_digest);
        """
    )
    _rewrite(_seal)


def downgrade() -> None:
    _rewrite(_open)
    op.execute(
        """
        DROP INDEX customer_directory_email;
        ALTER TABLE customer_directory
            DROP COLUMN email_digest,
            DROP COLUMN personal,
            ADD COLUMN email text NOT NULL DEFAULT '',
            ADD COLUMN name text NOT NULL DEFAULT '';
        CREATE INDEX customer_directory_email ON customer_directory (generation, email);
        DROP INDEX events_orders_of_customer;
        DROP TABLE personal_data_keys;
        """
    )


def _rewrite(change: Any) -> None:
    """Apply `change` to every event of the sealed types, batch by batch, with the
    append-only trigger lifted for this transaction's updates only."""
    conn = op.get_bind()
    conn.execute(sa.text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
    after = 0
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT position, type, schema_version, data FROM events"
                " WHERE type = ANY(:types) AND position > :after ORDER BY position LIMIT :n"
            ),
            {"types": list(SEALED_TYPES), "after": after, "n": BATCH},
        ).all()
        if not rows:
            break
        for position, type_name, schema_version, data in rows:
            changed = change(conn, type_name, schema_version, data)
            if changed is not None:
                conn.execute(
                    sa.text(
                        "UPDATE events SET data = CAST(:data AS jsonb), schema_version = :v"
                        " WHERE position = :position"
                    ),
                    {
                        "data": orjson.dumps(changed[1]).decode(),
                        "v": changed[0],
                        "position": position,
                    },
                )
        after = rows[-1][0]
    conn.execute(sa.text("ALTER TABLE events ENABLE TRIGGER events_append_only"))


def _key(conn: Any, subject: str, *, make: bool) -> bytes | None:
    key = conn.execute(
        sa.text("SELECT key FROM personal_data_keys WHERE subject_id = :s"), {"s": subject}
    ).first()
    if key is None and make:
        made = new_key()
        conn.execute(
            sa.text("INSERT INTO personal_data_keys (subject_id, key) VALUES (:s, :k)"),
            {"s": subject, "k": made},
        )
        return made
    return None if key is None or key[0] is None else bytes(key[0])


def _seal(
    conn: Any, type_name: str, schema_version: int, data: dict[str, Any]
) -> tuple[int, dict[str, Any]] | None:
    if schema_version != 1:
        return None
    cls = SEALED_TYPES[type_name]
    declared = cls.personal_fields
    key = _key(conn, str(data[declared.subject]), make=True)
    assert key is not None
    return 2, sealed_payload(declared, data, key)


def _open(
    conn: Any, type_name: str, schema_version: int, data: dict[str, Any]
) -> tuple[int, dict[str, Any]] | None:
    envelope = data.get(ENVELOPE)
    if not isinstance(envelope, dict):
        return None
    key = _key(conn, str(envelope["subject"]), make=False)
    return 1, opened_payload(SEALED_TYPES[type_name], data, key)
