"""What each customer holds: orders placed and not yet confirmed or cancelled, and the
units they reserve meanwhile (stock a customer keeps from others until payment settles).

The caps on both are set validation on the write side: PlaceOrder reads the customer's
holds under a lock per customer and writes its own in the same transaction, and
ConfirmOrder and CancelOrder delete it there, so concurrent placements cannot both slip
under a cap and no read model's lag lets one through.
"""

from __future__ import annotations

from sqlalchemy import text

from kernel.unit_of_work import UnitOfWork, lock_streams
from orders.domain import Holds

_HELD = text(
    "SELECT count(*), coalesce(sum(units), 0) FROM order_holds WHERE customer_id = :customer"
)
_HOLD = text(
    "INSERT INTO order_holds (order_id, customer_id, units) VALUES (:order, :customer, :units)"
    " ON CONFLICT (order_id) DO NOTHING"
)
_RELEASE = text("DELETE FROM order_holds WHERE order_id = :order")


def held_by(uow: UnitOfWork, customer_id: str) -> Holds:
    """The customer's holds, locked until the transaction ends (placements queue up)."""
    lock_streams(uow.conn, [f"holds-{customer_id}"])
    orders, units = uow.conn.execute(_HELD, {"customer": customer_id}).one()
    return Holds(int(orders), int(units))


def hold(uow: UnitOfWork, customer_id: str, order_id: str, units: int) -> None:
    uow.conn.execute(_HOLD, {"order": order_id, "customer": customer_id, "units": units})


def release(uow: UnitOfWork, order_id: str) -> None:
    uow.conn.execute(_RELEASE, {"order": order_id})
