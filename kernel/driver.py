"""SQLAlchemy `text()` statements run straight on the psycopg connection underneath.

For the hottest paths (appending events, a command's loads and bookkeeping, a read
model's batch of writes) SQLAlchemy's per-statement machinery (compiling, result
set-up, row wrapping) cost more than the statement's own work in PostgreSQL. The
statements stay `text()` constants; they are compiled to the driver's parameter
style once, run inside the caller's SQLAlchemy transaction, and their errors are
raised as SQLAlchemy's exceptions, so callers handle them as before.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.pq import ExecStatus
from sqlalchemy import Connection, TextClause
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import DBAPIError

TUPLES_OK = ExecStatus.TUPLES_OK


@contextmanager
def cursor(conn: Connection) -> Iterator[psycopg.Cursor[Any]]:
    """A cursor on `conn`'s psycopg connection; psycopg errors leave as SQLAlchemy's."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    try:
        with driver.cursor() as found:
            yield found
    except psycopg.Error as error:
        raise DBAPIError.instance(None, None, error, psycopg.Error) from error


def fetch(conn: Connection, statement: TextClause, params: Mapping[str, Any]) -> list[Any]:
    """The rows of `statement` (tuples; none if it returns none), run on `conn`'s psycopg
    connection."""
    with cursor(conn) as found:
        found.execute(compiled(statement, conn.dialect), params)
        result = found.pgresult  # not `description`, which builds a column object per column
        return found.fetchall() if result and result.status == TUPLES_OK else []


@functools.lru_cache(maxsize=512)
def compiled(statement: TextClause, dialect: Dialect) -> str:
    """The statement in the driver's parameter style, compiled once per statement."""
    return str(statement.compile(dialect=dialect))


@contextmanager
def autocommit(conn: Connection) -> Iterator[Connection]:
    """`conn` with each statement committing on its own: no BEGIN and COMMIT round trips,
    for bookkeeping statements that need no transaction around them. `conn` must not be
    inside a transaction; its isolation level is restored afterwards."""
    previous = conn.get_execution_options().get("isolation_level")
    if previous == "AUTOCOMMIT":
        yield conn
        return
    conn.execution_options(isolation_level="AUTOCOMMIT")
    try:
        yield conn
    finally:
        if conn.in_transaction():
            conn.commit()  # only SQLAlchemy's bookkeeping: nothing is sent
        conn.execution_options(isolation_level=previous or conn.default_isolation_level)
