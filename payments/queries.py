"""What other parts of the system may ask of payments, answered from its own streams."""

from __future__ import annotations

from kernel.unit_of_work import UnitOfWork
from payments.domain import Payment


def refunded(uow: UnitOfWork, order_id: str) -> bool:
    """Whether the order's payment was refunded in full, or refunds that give it all
    back are on their way (a partial refund, for a returned line, is not). Locks the
    payment's stream until the transaction ends, so a refund asked for meanwhile waits
    for (and sees) this one's outcome, and the other way round."""
    payment = uow.load(Payment, order_id)
    return payment is not None and payment.fully_refunding
