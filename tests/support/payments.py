"""The payments workers' part, played in-process: make every provider call a payment
waits on (charges, refunds, look-ups of pending charges), as `rq worker shop-payments`
would, against the session's local Stripe."""

from __future__ import annotations

from config.bootstrap import Application
from payments import tracking


def settle_payments(application: Application) -> list[str]:
    """Make the provider call of every payment waiting on one; what each recorded."""
    with application.engine.connect() as conn:
        waiting = tracking.overdue(conn, older_than=0, limit=10_000)
    return [application.provider_calls.settle(payment.order_id) for payment in waiting]
