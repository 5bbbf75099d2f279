"""Engine construction and the migration state of a database."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

import migrations
from kernel import jsonb
from kernel.leases import default_holder


def sqlalchemy_url(database_url: str) -> str:
    """Point a plain postgresql:// URL at the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    return database_url


IDLE_BEFORE_PING = 1.0
"""Seconds a pooled connection may sit unused before its next checkout pings it."""


def make_engine(
    database_url: str,
    *,
    pool_size: int = 5,
    statement_timeout: float = 10.0,
    idle_in_transaction_timeout: float = 2.0,
) -> Engine:
    """The shop's engine. Its sessions are bounded: a statement may run for
    `statement_timeout` seconds, a transaction sit idle for `idle_in_transaction_timeout`
    (the server then ends the session, releasing its locks: a frozen process cannot hold
    a stream's lock for long), and TCP keepalives on both ends notice a peer that went
    away within about ten seconds."""
    options = " ".join(
        (
            f"-c statement_timeout={int(statement_timeout * 1000)}",
            f"-c idle_in_transaction_session_timeout={int(idle_in_transaction_timeout * 1000)}",
            "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3",
        )
    )
    engine = create_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_timeout=5,
        connect_args={
            "connect_timeout": 3,
            "options": options,
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 3,
            "tcp_user_timeout": 10_000,
        },
    )
    _ping_when_idle(engine, IDLE_BEFORE_PING)
    _name_sessions(engine)
    event.listen(engine, "connect", lambda connection, _: jsonb.parse_with_orjson(connection))
    return engine


def _name_sessions(engine: Engine) -> None:
    """Name each session after the process that opened it (`shop@host:pid`, as lease
    holders are named; unless the URL names it), so pg_stat_activity, and the status
    pages quoting it, say which process a stuck transaction belongs to. Set per
    connection: gunicorn forks."""

    @event.listens_for(engine, "do_connect")
    def named(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        cparams.setdefault("application_name", f"shop@{default_holder()}")


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Pessimistic disconnect handling, paid only by connections that sat idle.

    A ping on every checkout (`pool_pre_ping`) costs a round trip per transaction,
    a sixth of a one-event append. A PostgreSQL restart takes longer than
    `idle_seconds`, so every connection it left stale has sat idle that long and is
    pinged, and replaced, before use: no request fails on one. Under load a
    connection goes back out within milliseconds and skips the ping.
    """

    @event.listens_for(engine, "checkin")
    def returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        checked_in = record.info.get("checked_in")
        if checked_in is None or time.monotonic() - checked_in < idle_seconds:
            return  # just connected, or just used
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError(str(error)) from error  # the pool reconnects


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migrate(database_url: str) -> None:
    """Bring the schema to the newest migration."""
    command.upgrade(alembic_config(database_url), "head")


def head_revision(database_url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None
