"""The database and Redis state the tests start from and look at."""

from __future__ import annotations

from sqlalchemy import Engine, text

from config.bootstrap import Application


def reset_state(application: Application) -> None:
    """Empty every table but the migration marker, and the test Redis database."""
    with application.engine.begin() as conn:
        tables = conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version'"
            )
        ).scalars()
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    application.redis.flushdb()


def row_count(engine: Engine, table: str) -> int:
    """How many rows `table` holds."""
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
