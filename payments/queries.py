"""What other parts of the system may ask of payments, answered from its own streams."""

from __future__ import annotations

from kernel.unit_of_work import UnitOfWork
from payments.domain import Payment


def refunded(uow: UnitOfWork, order_id: str) -> bool:
    """Whether the order's payment was refunded, or a refund is on its way. Locks the
    payment's stream until the transaction ends, so a refund asked for meanwhile waits
    for (and sees) this one's outcome, and the other way round."""
    payment = uow.load(Payment, order_id)
    return payment is not None and payment.status in ("refunding", "refunded")
