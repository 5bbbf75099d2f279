"""Statements queued while a batch of events is handled, then sent to PostgreSQL at once.

A read model writes one or two statements per event. Executed one by one, each
waits for its round trip, and a catch-up batch of a thousand events spends most
of its time waiting. Queued here and flushed through psycopg's pipeline mode,
the whole batch costs one round trip, and the statements still run in the order
they were queued, each seeing the effects of the ones before it, so handlers
keep the meaning they would have executed one at a time. What they cannot do is
read a result back: a handler that needs one expresses the decision in SQL.

A read model can go further with a collector: its handlers hand it rows, and at
flush it turns the whole batch's rows into a few set-based statements (one
INSERT of many rows instead of many INSERTs). Those run before the statements
queued one by one, which therefore see every row the batch's collectors wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, TextClause

from kernel import driver


class Collector(Protocol):
    """Gathers a batch's rows for some tables; `statements` writes them all."""

    def statements(self) -> Iterable[tuple[TextClause, Mapping[str, Any]]]: ...


C = TypeVar("C", bound=Collector)


class WriteBatch:
    """Write statements for one transaction on `conn`, sent in order by `flush`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._queued: list[tuple[str, Mapping[str, Any]]] = []
        self._collectors: dict[type[Collector], Collector] = {}

    def execute(self, statement: TextClause, params: Mapping[str, Any]) -> None:
        self._queued.append((driver.compiled(statement, self.conn.dialect), params))

    def collector(self, kind: type[C]) -> C:
        """This batch's `kind()` collector, made on first use. Its statements run at
        flush, before the statements queued with `execute`."""
        found = self._collectors.get(kind)
        if found is None:
            found = self._collectors[kind] = kind()
        return found  # type: ignore[return-value]  # keyed by its own type

    def flush(self) -> None:
        """Run every queued statement, in order, inside the caller's transaction."""
        collected = [
            (driver.compiled(statement, self.conn.dialect), params)
            for collector in self._collectors.values()
            for statement, params in collector.statements()
        ]
        queued = collected + self._queued
        self._collectors, self._queued = {}, []
        if not queued:
            return
        with driver.cursor(self.conn) as cursor:
            if len(queued) == 1:
                cursor.execute(*queued[0])
                return
            with cursor.connection.pipeline():
                for sql, params in queued:
                    cursor.execute(sql, params)
