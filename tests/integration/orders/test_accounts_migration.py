"""Migration 0011 gives every customer registered before it an account holding the digest
of their email (so it stays taken) and no password (so it cannot sign in); and it can be
undone."""

from __future__ import annotations

import json
import uuid

from alembic import command
from sqlalchemy import create_engine, text

from config.database import alembic_config
from kernel.messages import Metadata
from kernel.partitions import slot_of
from orders.accounts import Accounts, email_digest
from orders.passwords import Passwords
from tests.support.shop import PASSWORD

EARLIER = {"ada@example.com": str(uuid.uuid4()), "grace@example.com": str(uuid.uuid4())}


def test_customers_registered_before_get_accounts_without_passwords(database: str) -> None:
    config = alembic_config(database)
    command.upgrade(config, "0010")
    engine = create_engine(database.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:  # as registrations stored them then: v1, in the clear
            for email, customer_id in EARLIER.items():
                stream = f"customer-{customer_id}"
                conn.execute(
                    text(
                        "INSERT INTO events (stream_id, stream_type, version, type,"
                        " schema_version, data, metadata, partition_key, slot)"
                        " VALUES (:stream, 'customer', 1, 'CustomerRegistered', 1,"
                        " CAST(:data AS jsonb), CAST(:metadata AS jsonb), :stream, :slot)"
                    ),
                    {
                        "stream": stream,
                        "data": json.dumps(
                            {"customer_id": customer_id, "email": email, "name": "Someone"}
                        ),
                        "metadata": json.dumps(Metadata().to_json()),
                        "slot": slot_of(stream),
                    },
                )
        command.upgrade(config, "0011")

        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT customer_id, email_digest, password_hash FROM customer_accounts")
            ).all()
        assert sorted((row[0], bytes(row[1]), row[2]) for row in rows) == sorted(
            (customer_id, email_digest(email), None) for email, customer_id in EARLIER.items()
        )
        accounts = Accounts(engine, Passwords(), access_ttl=60, refresh_ttl=60)
        assert accounts.sign_in("ada@example.com", PASSWORD) is None

        command.downgrade(config, "0010")
        command.upgrade(config, "0011")
    finally:
        engine.dispose()
