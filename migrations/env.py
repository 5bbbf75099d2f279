"""Alembic environment: migrations are plain SQL, run on the configured database."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool

url = context.config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL", "")
if not url:
    raise SystemExit("DATABASE_URL is not set")
url = url.replace("postgresql://", "postgresql+psycopg://", 1)

engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
