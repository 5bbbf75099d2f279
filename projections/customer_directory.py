"""Customer directory: every registered customer, for the admin's screens (who placed an
order, whose orders an email names).

It holds no personal data in the clear: each row keeps the name and email as their event
sealed them (`personal`, opened by the query with the customer's key) and a digest of
the email to find a customer by. CustomerForgotten clears both.

Its handlers insert a row per CustomerRegistered (or nothing when the customer is there
already) and clear a row per CustomerForgotten, so applying an event twice changes
nothing: it may run synchronously.
"""

from __future__ import annotations

from sqlalchemy import text

from kernel import jsonb
from kernel.event_store import RecordedEvent
from kernel.personal_data import ERASED, lookup_digest
from kernel.write_batch import WriteBatch
from orders.events import CustomerForgotten, CustomerRegistered
from projections.projection import Mode, PostgresHandlers, PostgresProjection

VERSION = 2  # 2: the name and email are stored sealed
"""Bump it when what this read model stores changes (see docs/DESIGN.md, read model
versions): workers then rebuild it on their own."""

handlers: PostgresHandlers = PostgresHandlers()

_REGISTER = text(
    """
    INSERT INTO customer_directory (generation, customer_id, email_digest, personal,
                                    registered_at)
    VALUES (:gen, :customer_id, :digest, CAST(:personal AS jsonb), :at)
    ON CONFLICT (generation, customer_id) DO NOTHING
    """
)
_FORGET = text(
    "UPDATE customer_directory SET email_digest = NULL, personal = NULL"
    " WHERE generation = :gen AND customer_id = :customer_id"
)


@handlers.on(CustomerRegistered)
def registered(
    event: CustomerRegistered, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    erased = event.email == ERASED  # read after the customer was forgotten (a rebuild)
    writes.execute(
        _REGISTER,
        {
            "gen": gen,
            "customer_id": event.customer_id,
            "digest": None if erased else lookup_digest(event.email),
            "personal": None if erased else jsonb.dumps(recorded.sealed),
            "at": recorded.metadata.occurred_at,
        },
    )


@handlers.on(CustomerForgotten)
def forgotten(
    event: CustomerForgotten, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    writes.execute(_FORGET, {"gen": gen, "customer_id": event.customer_id})


def projection(mode: Mode = "async") -> PostgresProjection:
    return PostgresProjection(
        "customer_directory",
        ["customer_directory"],
        handlers,
        mode,
        version=VERSION,
        sync_safe=True,
    )
