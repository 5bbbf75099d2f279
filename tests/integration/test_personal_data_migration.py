"""Migration 0013 seals the personal fields of the events written before sealing existed,
in place, with a key made per customer; drops what read models and snapshots held in the
clear; and can be undone for customers not forgotten."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, text

from config.database import alembic_config
from kernel.event_store import EventStore
from kernel.partitions import slot_of
from kernel.personal_data import ERASED
from kernel.registry import EventRegistry
from orders.events import EVENTS, UPCASTERS, Address, CustomerRegistered
from tests.unit.kernel.test_personal_data import ADDRESS, PLACED_V1, grace_placed

GRACE = PLACED_V1["customer_id"]
ALAN = str(uuid.uuid4())


def store() -> EventStore:
    registry = EventRegistry()
    registry.register(*EVENTS)
    for type_name, version, upcaster in UPCASTERS:
        registry.add_upcaster(type_name, version, upcaster)
    return EventStore(registry, key_field="order_id", keyed_stream_types=("order",))


def _v1(
    stream_id: str, stream_type: str, type_name: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    key = data.get("order_id", stream_id) if stream_type == "order" else stream_id
    return {
        "stream_id": stream_id, "stream_type": stream_type, "type": type_name,
        "data": json.dumps(data), "key": key, "slot": slot_of(str(key)),
    }  # fmt: skip


def test_events_of_before_are_sealed_in_place_and_read_back_the_same(database: str) -> None:
    config = alembic_config(database)
    before = ScriptDirectory.from_config(config).get_revision("0013").down_revision
    command.upgrade(config, str(before))
    engine = create_engine(database.replace("postgresql://", "postgresql+psycopg://", 1))
    registered = {"customer_id": GRACE, "email": "grace@example.com", "name": "Grace Hopper"}
    alan = {"customer_id": ALAN, "email": "alan@example.com", "name": "Alan Turing"}
    try:
        with engine.begin() as conn:
            for row in (
                _v1(f"customer-{GRACE}", "customer", "CustomerRegistered", registered),
                _v1(f"customer-{ALAN}", "customer", "CustomerRegistered", alan),
                _v1(f"order-{PLACED_V1['order_id']}", "order", "OrderPlaced", PLACED_V1),
            ):
                conn.execute(
                    text(
                        "INSERT INTO events (stream_id, stream_type, version, type,"
                        " schema_version, data, metadata, partition_key, slot)"
                        " VALUES (:stream_id, :stream_type, 1, :type, 1, CAST(:data AS jsonb),"
                        ' \'{"message_id": "m", "correlation_id": "m",'
                        ' "occurred_at": "2026-01-01T00:00:00+00:00"}\', :key, :slot)'
                    ),
                    row,
                )
            params = {
                "s": f"customer-{GRACE}",
                "state": json.dumps(registered | {"registered": True}),
                "c": GRACE,
                "o": PLACED_V1["order_id"],
                "doc": json.dumps({"shipping_address": ADDRESS, "status": "pending"}),
            }
            for statement in (
                "INSERT INTO snapshots (stream_id, stream_type, version, schema_version, state)"
                " VALUES (:s, 'customer', 1, 1, CAST(:state AS jsonb))",
                "INSERT INTO customer_directory VALUES (1, :c, 'grace@example.com',"
                " 'Grace Hopper', now())",
                "INSERT INTO order_details (generation, order_id, customer_id, status,"
                " placed_at, updated_at, document)"
                " VALUES (1, :o, :c, 'pending', now(), now(), CAST(:doc AS jsonb))",
            ):
                conn.execute(text(statement), params)

        command.upgrade(config, "0013")

        with engine.connect() as conn:
            stored = conn.execute(text("SELECT schema_version, data::text FROM events")).all()
            assert {version for version, _ in stored} == {2}
            for clear in ("grace@example.com", "Grace Hopper", "Navy Yard", "Alan Turing"):
                assert not any(clear in data for _, data in stored)
                assert clear not in json.dumps(_everything_but_events(conn), default=str)
            keys = conn.execute(text("SELECT subject_id FROM personal_data_keys")).scalars()
            assert sorted(keys) == sorted([GRACE, ALAN])
            events = store().read_all(conn)
            assert [recorded.event for recorded in events] == [
                CustomerRegistered(GRACE, "grace@example.com", "Grace Hopper"),
                CustomerRegistered(ALAN, "alan@example.com", "Alan Turing"),
                grace_placed(Address(**ADDRESS)),
            ]
        with engine.begin() as conn:  # Grace is forgotten, Alan is not
            store().personal_keys.forget(conn, GRACE)

        command.downgrade(config, str(before))

        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT schema_version, data FROM events ORDER BY position")
            ).all()
        assert [version for version, _ in rows] == [1, 1, 1]
        assert rows[0][1] == {"customer_id": GRACE, "email": ERASED, "name": ERASED}
        assert rows[1][1] == alan
        assert rows[2][1]["shipping_address"]["line1"] == ERASED
    finally:
        engine.dispose()


def _everything_but_events(conn: Connection) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for table in ("snapshots", "customer_directory", "order_details"):
        found += [dict(row) for row in conn.execute(text(f"SELECT * FROM {table}")).mappings()]
    return found
