"""Migration 0010 records the generations that exist as built with version 1: those with a
row, a rebuild under way, and read models that ran without ever being rebuilt (no row:
their subscription is the evidence); and it can be undone."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, text

from config.database import alembic_config
from projections import generations
from projections.generations import OPERATOR, Build, Generations


def test_existing_generations_become_version_1(database: str) -> None:
    config = alembic_config(database)
    command.upgrade(config, "0009")
    engine = create_engine(database.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    """
                    INSERT INTO projection_generations (name, active, building, rebuild_started_at)
                    VALUES ('order_detail', 2, 3, now()), ('sales_analytics', 4, NULL, NULL);
                    INSERT INTO subscriptions (name, partition)
                    VALUES ('catalog@1', 0), ('order_detail@2', 0), ('order_fulfillment', 0);
                    INSERT INTO subscription_partitions (name, partition, partitions)
                    VALUES ('order_list@1', 0, 4), ('order_list@1', 1, 4),
                           ('sales_analytics@4', 0, 1);
                    """
                )
            )
        command.upgrade(config, "0010")

        with engine.connect() as conn:
            found = generations.read_all(conn)
        v1 = Build(1, None, None)
        rebuilding = found.pop("order_detail")
        assert rebuilding.rebuild_started_at is not None
        assert rebuilding == Generations(
            2, 3, v1, Build(1, OPERATOR, None), rebuilding.rebuild_started_at
        )
        assert found == {
            "sales_analytics": Generations(4, None, v1),
            "catalog": Generations(1, None, v1),
            "order_list": Generations(1, None, v1),
        }

        command.downgrade(config, "0009")
        command.upgrade(config, "0010")
    finally:
        engine.dispose()
