"""Customer directory: every registered customer's name and email, for the admin's
screens (who placed an order, whose orders an email names).

Its one handler inserts a row per CustomerRegistered, or nothing when the customer is
there already, so applying an event twice changes nothing: it may run synchronously.
"""

from __future__ import annotations

from sqlalchemy import text

from kernel.event_store import RecordedEvent
from kernel.write_batch import WriteBatch
from orders.events import CustomerRegistered
from projections.projection import Mode, PostgresHandlers, PostgresProjection

VERSION = 1
"""Bump it when what this read model stores changes (see docs/DESIGN.md, read model
versions): workers then rebuild it on their own."""

handlers: PostgresHandlers = PostgresHandlers()

_REGISTER = text(
    """
    INSERT INTO customer_directory (generation, customer_id, email, name, registered_at)
    VALUES (:gen, :customer_id, :email, :name, :at)
    ON CONFLICT (generation, customer_id) DO NOTHING
    """
)


@handlers.on(CustomerRegistered)
def registered(
    event: CustomerRegistered, writes: WriteBatch, gen: int, recorded: RecordedEvent
) -> None:
    writes.execute(
        _REGISTER,
        {
            "gen": gen,
            "customer_id": event.customer_id,
            "email": event.email,
            "name": event.name,
            "at": recorded.metadata.occurred_at,
        },
    )


def projection(mode: Mode = "async") -> PostgresProjection:
    return PostgresProjection(
        "customer_directory",
        ["customer_directory"],
        handlers,
        mode,
        version=VERSION,
        sync_safe=True,
    )
