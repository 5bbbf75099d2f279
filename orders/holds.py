"""What each customer holds: orders placed and not yet confirmed or cancelled, and the
units they reserve meanwhile (stock a customer keeps from others until payment settles).

The caps on both are set validation on the write side: PlaceOrder reads the customer's
holds under a lock per customer and writes its own in the same transaction, and
ConfirmOrder and CancelOrder delete it there, so concurrent placements cannot both slip
under a cap and no read model's lag lets one through.
"""

from __future__ import annotations

from sqlalchemy import text

from kernel.unit_of_work import STREAM_LOCKS, UnitOfWork, lock_streams
from orders.domain import Holds

_HELD = text(
    "SELECT count(*), coalesce(sum(units), 0) FROM order_holds WHERE customer_id = :customer"
)
# The lock and the read in one round trip when the lock is free (the usual case). A
# statement reads with the snapshot it started with, so one that waited for the lock
# would miss what its holder committed: when taken, `fresh` is false, nothing is read,
# and `held_by` waits for the lock and reads in statements of their own.
_LOCKED_HELD = text(
    "WITH taken AS MATERIALIZED ("
    " SELECT pg_try_advisory_xact_lock(:ns, hashtext(:lock)) AS fresh)"
    " SELECT taken.fresh, count(held.units), coalesce(sum(held.units), 0)"
    " FROM taken LEFT JOIN order_holds AS held"
    " ON taken.fresh AND held.customer_id = :customer GROUP BY taken.fresh"
)
_HOLD = text(
    "INSERT INTO order_holds (order_id, customer_id, units) VALUES (:order, :customer, :units)"
    " ON CONFLICT (order_id) DO NOTHING"
)
_RELEASE = text("DELETE FROM order_holds WHERE order_id = :order")


def held_by(uow: UnitOfWork, customer_id: str) -> Holds:
    """The customer's holds, locked until the transaction ends (placements queue up)."""
    lock = _lock_of(customer_id)
    params = {"ns": STREAM_LOCKS, "lock": lock, "customer": customer_id}
    fresh, orders, units = uow.conn.execute(_LOCKED_HELD, params).one()
    if not fresh:
        lock_streams(uow.conn, [lock])
        orders, units = uow.conn.execute(_HELD, {"customer": customer_id}).one()
    return Holds(int(orders), int(units))


def _lock_of(customer_id: str) -> str:
    """The name the customer's holds are locked under, as a stream would be."""
    return f"holds-{customer_id}"


def hold(uow: UnitOfWork, customer_id: str, order_id: str, units: int) -> None:
    uow.conn.execute(_HOLD, {"order": order_id, "customer": customer_id, "units": units})


def release(uow: UnitOfWork, order_id: str) -> None:
    uow.conn.execute(_RELEASE, {"order": order_id})
