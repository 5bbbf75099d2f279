from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from config.bootstrap import Container


@pytest.fixture(autouse=True)
def clean_state(container: Container) -> Iterator[None]:
    """Every integration test starts from an empty log, empty read models and empty Redis."""
    with container.engine.begin() as conn:
        tables = conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version'"
            )
        ).scalars()
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    container.redis.flushdb()
    yield
