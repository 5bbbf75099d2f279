"""The command bus: one handler per command, wrapped in middleware.

Dispatch runs: logging (with the correlation id) -> retry on concurrency
conflicts -> one transaction holding the idempotency record, the handler's
events and any synchronous projections -> after-commit listeners.

`CommandBus.transaction` is that same protocol for work that dispatches commands
among writes of its own (the saga, the payment webhook inbox): one transaction,
run again on a conflict, the workers woken once it has committed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, TextClause, text
from sqlalchemy.exc import DBAPIError

from kernel import driver, horizon
from kernel.aggregate_cache import AggregateCache
from kernel.codec import to_data
from kernel.errors import ConcurrencyError, DomainError, DuplicateHandler, NoHandler
from kernel.event_store import UNIQUE_VIOLATION, ConsistencyToken, EventStore, RecordedEvent
from kernel.logging import bind_correlation
from kernel.messages import Command, Metadata
from kernel.results import Failure, Result, Success, result_from_json, result_to_json
from kernel.unit_of_work import UnitOfWork

C = TypeVar("C", bound=Command)
T = TypeVar("T")
Handler = Callable[[Any, UnitOfWork], str]
"""Loads aggregates from the unit of work, calls one decision, saves, returns the aggregate id."""

Next = Callable[[Command, Metadata], Result]
Middleware = Callable[[Command, Metadata, Next], Result]
BeforeCommit = Callable[[Connection, Sequence[RecordedEvent]], None]
AfterCommit = Callable[[Sequence[RecordedEvent]], None]

log = logging.getLogger("kernel.commands")

# Claiming the id, and declaring the transaction a writer (kernel.horizon) first if it
# has not yet: one round trip.
_CLAIM = """
    WITH {declared}
    INSERT INTO processed_commands (command_id, command_type, fingerprint)
    SELECT :id, :type, :fingerprint FROM declared
    ON CONFLICT DO NOTHING RETURNING (SELECT clean FROM declared)
"""
_STORE_RESULT = text(
    "UPDATE processed_commands SET result = CAST(:result AS jsonb) WHERE command_id = :id"
)


class Transaction:
    """One run of `CommandBus.transaction`'s work: its connection, inside the transaction,
    and the commands dispatched in it, which commit or roll back with everything else."""

    def __init__(self, bus: CommandBus, conn: Connection) -> None:
        self.conn = conn
        self.recorded: list[RecordedEvent] = []
        self._bus = bus
        self._after_commit: list[Callable[[], None]] = []

    def dispatch(self, command: Command, metadata: Metadata) -> Result:
        """Run the command here, in a savepoint. A refusal is kept like any other and
        returned as a Failure, undoing only the command; a concurrency conflict raises
        ConcurrencyError, and `CommandBus.transaction` runs the whole work again."""
        return self._bus._through_middleware(self._in_savepoint, command, metadata)

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once this transaction has committed (not if it rolls back)."""
        self._after_commit.append(action)

    def _in_savepoint(self, command: Command, metadata: Metadata) -> Result:
        try:
            with self.conn.begin_nested():
                return self._bus._apply(self, command, metadata)
        except DomainError as error:
            failure = Failure(error.code, error.message)
            return self._bus._store_failure(self.conn, command, metadata, failure)


class CommandBus:
    def __init__(
        self,
        engine: Engine,
        store: EventStore,
        *,
        snapshot_interval: int = 100,
        max_attempts: int = 8,
        middleware: Sequence[Middleware] = (),
    ) -> None:
        self.engine = engine
        self.store = store
        self.snapshot_interval = snapshot_interval
        self.max_attempts = max_attempts
        self._handlers: dict[type[Command], Handler] = {}
        self._middleware = [log_command, *middleware]
        self.before_commit: list[BeforeCommit] = []
        self.after_commit: list[AfterCommit] = []
        self.cache = AggregateCache()  # the hot aggregates' states, shared by its commands

    def register(self, command_type: type[C], handler: Callable[[C, UnitOfWork], str]) -> None:
        if command_type in self._handlers:
            raise DuplicateHandler(f"{command_type.__name__} already has a handler")
        self._handlers[command_type] = handler

    def handles(self, command_type: type[Command]) -> bool:
        return command_type in self._handlers

    def dispatch(self, command: Command, metadata: Metadata | None = None) -> Result:
        """Run the command once per message id; a repeated id returns the first result."""
        return self._through_middleware(self._dispatch_alone, command, metadata or Metadata())

    def transaction(self, work: Callable[[Transaction], T], *, conn: Connection | None = None) -> T:
        """Run `work` in one transaction, on `conn` when given (else a pooled connection).

        A concurrency conflict, serialization failure or deadlock rolls everything back
        and runs `work` again, at most `max_attempts` times in all; then ConcurrencyError.
        Once committed, the events of the commands it dispatched go to the after-commit
        listeners, then its own `after_commit` actions run. Any other exception rolls
        back and propagates.
        """
        return self._run(work, conn)

    def _run(
        self,
        work: Callable[[Transaction], T],
        conn: Connection | None = None,
        *,
        alone: bool = False,
    ) -> T:
        # `alone`: the work is one command's `_apply`, which declares the writer itself
        # with its first statement, the claim.
        for attempt in range(1, self.max_attempts + 1):
            try:
                with _begin(self.engine, conn) as begun:
                    if not alone:
                        horizon.declare_writer(begun)  # first, before anything it writes
                    done = Transaction(self, begun)
                    result = work(done)
            except (ConcurrencyError, DBAPIError) as error:
                if not _conflict(error):
                    raise
                if attempt == self.max_attempts:
                    raise ConcurrencyError(f"gave up after {attempt} attempts: {error}") from error
                time.sleep(random.uniform(0.002, 0.01) * attempt)
                continue
            self._committed(done)
            return result
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _dispatch_alone(self, command: Command, metadata: Metadata) -> Result:
        # Its own transaction, without a savepoint: a refusal rolls it all back, and the
        # refusal is then kept in a transaction of its own.
        try:
            return self._run(lambda done: self._apply(done, command, metadata), alone=True)
        except DomainError as error:
            return self._remember_failure(command, metadata, Failure(error.code, error.message))
        except ConcurrencyError:
            return Failure("conflict", "the data changed concurrently too often; try again")

    def _through_middleware(self, final: Next, command: Command, metadata: Metadata) -> Result:
        if type(command) not in self._handlers:
            raise NoHandler(type(command).__name__)
        chain = final
        for middleware in reversed(self._middleware):
            chain = _link(middleware, chain)
        return chain(command, metadata)

    def _committed(self, done: Transaction) -> None:
        # Listeners and actions (e.g. waking workers) must not undo a commit by failing.
        if done.recorded:
            for listener in self.after_commit:
                try:
                    listener(done.recorded)
                except Exception:
                    log.exception("after-commit listener failed")
        for action in done._after_commit:
            try:
                action()
            except Exception:
                log.exception("after-commit action failed")

    def _apply(self, done: Transaction, command: Command, metadata: Metadata) -> Result:
        # Claiming the id first makes a concurrent duplicate wait for this one.
        conn = done.conn
        fingerprint = _fingerprint(command)
        claim = {
            "id": metadata.message_id,
            "type": type(command).__name__,
            "fingerprint": fingerprint,
        }
        claimed = driver.fetch(conn, _claim(horizon.declaring_cte(conn)), claim)
        if not claimed:
            return self._earlier_result(conn, metadata.message_id, fingerprint)
        horizon.declared(conn, claimed[0][0])
        uow = UnitOfWork(
            conn,
            self.store,
            metadata,
            snapshot_interval=self.snapshot_interval,
            write_behind=True,
            cache=self.cache,
        )
        aggregate_id = self._handlers[type(command)](command, uow)
        uow.flush()  # every stream it saved, in one round trip
        for hook in self.before_commit:
            hook(conn, uow.recorded)
        token = str(ConsistencyToken.of(uow.recorded[-1])) if uow.recorded else "0.0"
        result: Result = Success(aggregate_id, token)
        driver.fetch(
            conn, _STORE_RESULT, {"id": metadata.message_id, "result": _result_json(result)}
        )
        done.recorded += uow.recorded
        return result

    def _remember_failure(self, command: Command, metadata: Metadata, failure: Failure) -> Result:
        with self.engine.begin() as conn:
            return self._store_failure(conn, command, metadata, failure)

    def _store_failure(
        self, conn: Connection, command: Command, metadata: Metadata, failure: Failure
    ) -> Result:
        """Keep a refusal, so the same command id is refused the same way again."""
        stored = conn.execute(
            text(
                "INSERT INTO processed_commands (command_id, command_type, fingerprint, result)"
                " VALUES (:id, :type, :fingerprint, CAST(:result AS jsonb))"
                " ON CONFLICT DO NOTHING RETURNING command_id"
            ),
            {
                "id": metadata.message_id,
                "type": type(command).__name__,
                "fingerprint": _fingerprint(command),
                "result": _result_json(failure),
            },
        ).first()
        if stored is None:
            return self._earlier_result(conn, metadata.message_id, _fingerprint(command))
        return failure

    @staticmethod
    def _earlier_result(conn: Connection, command_id: str, fingerprint: str) -> Result:
        stored, stored_fingerprint = conn.execute(
            text("SELECT result, fingerprint FROM processed_commands WHERE command_id = :id"),
            {"id": command_id},
        ).one()
        if stored_fingerprint != fingerprint:
            return Failure(
                "command_id_reused", "this command id was already used for a different request"
            )
        return result_from_json(stored)


def log_command(command: Command, metadata: Metadata, call_next: Next) -> Result:
    """Log each command with its outcome and duration, under its correlation id."""
    with bind_correlation(metadata.correlation_id, metadata.causation_id):
        started = time.perf_counter()
        try:
            result = call_next(command, metadata)
        except Exception:
            log.exception("command crashed", extra={"command": type(command).__name__})
            raise
        fields: dict[str, Any] = {
            "command": type(command).__name__,
            "command_id": metadata.message_id,
            "order_id": getattr(command, "order_id", None),
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "ok": result.ok,
        }
        if isinstance(result, Failure):
            fields["code"] = result.code
        log.info("command handled", extra=fields)
        return result


def _fingerprint(command: Command) -> str:
    """What the command asks for; a reused command id must ask for the same thing."""
    payload = json.dumps([type(command).__name__, to_data(command)], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


@functools.cache
def _claim(declared: str) -> TextClause:
    return text(_CLAIM.format(declared=declared))


def _result_json(result: Result) -> str:
    return json.dumps(result_to_json(result))


def _link(middleware: Middleware, call_next: Next) -> Next:
    return lambda command, metadata: middleware(command, metadata, call_next)


def _conflict(error: Exception) -> bool:
    """A conflict with a concurrent writer, which running the work again resolves."""
    if isinstance(error, ConcurrencyError):
        return True
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None)
    return sqlstate in {UNIQUE_VIOLATION, "40001", "40P01"}


@contextmanager
def _begin(engine: Engine, conn: Connection | None) -> Iterator[Connection]:
    if conn is None:
        with engine.begin() as begun:
            yield begun
    else:
        with conn.begin():
            yield conn
