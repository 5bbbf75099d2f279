"""Calls to the payment provider, and the recording of its answers.

Jobs on their own queue run these, so a slow provider holds up nothing but them. Each
call follows the same three steps, and only the last one is a transaction:

1. read the payment (no transaction, no lock): is a charge or refund still due?
2. call the provider with the payment's idempotency key, bounded by the gateway's
   timeouts. ProviderUnavailable propagates: the job is retried later with the same
   key, so the provider moves the money at most once however often it is asked;
3. record the answer with a command. Another answer may have got there first (the
   provider's webhook, a concurrent retry): recording it again changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine

from kernel.command_bus import CommandBus
from kernel.driver import autocommit
from kernel.event_store import RecordedEvent
from kernel.messages import Command, Metadata
from kernel.money import Money
from kernel.results import Failure
from kernel.tracing import NO_TRACING, Tracing
from payments.commands import RecordChargeOutcome, RecordRefundOutcome
from payments.domain import Payment
from payments.gateway import ChargeRequest, ChargeResult, CustomerAction, PaymentGateway

log = logging.getLogger("payments.provider_calls")

PROVIDER_ACTOR = "payment-provider"
_IDS = uuid.UUID("8e3f61a4-0b6c-4d57-9a2e-5f14c7d0b93e")  # fixed forever: answers -> ids


@dataclass(frozen=True, slots=True)
class PaymentView:
    status: str
    amount: Money
    action: CustomerAction | None


class ProviderCalls:
    def __init__(
        self,
        engine: Engine,
        bus: CommandBus,
        gateway: PaymentGateway,
        *,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.gateway = gateway
        self.tracing = tracing

    def settle(self, order_id: str) -> str:
        """Make the provider call the order's payment waits on, if it waits on one: a
        charge or refund asked for, the look-up of a charge still pending (its webhook
        may be lost), or, for an abandoned charge, the cancellation of a pending one or
        the fencing of its idempotency key. Returns what was recorded, or why nothing
        was."""
        payment, last = self._current(order_id)
        if payment is None or last is None:
            return "no payment"
        # The job serves one call of one order: its span joins the trace of the event
        # that asked for it (a charge, refund or cancellation), not the job's.
        call = {"shop.order_id": order_id, "shop.payment.status": payment.status}
        with self.tracing.following(last.metadata, "settle_payment", call):
            return self._settle(payment, last)

    def _settle(self, payment: Payment, last: RecordedEvent) -> str:
        if payment.status == "requested":
            return self._charge(payment, last)
        if payment.status == "pending":
            return self._look_up(payment, last)
        if payment.status == "refunding":
            return self._refund(payment, last)
        if payment.status == "cancelling":
            return self._cancel(payment, last)
        if payment.status == "abandoned":
            return self._fence(payment, last)
        return f"nothing due: {payment.status}"

    def for_customer(self, order_id: str, customer_id: str) -> PaymentView | None:
        """The order's payment as its customer may see it, with what the provider waits
        for them to do while the charge is pending (asked of the provider now: the
        client secret is never stored); None when there is no payment of this customer's
        for the order."""
        payment, _ = self._current(order_id)
        if payment is None or not payment.customer_id or payment.customer_id != customer_id:
            return None
        action = None
        if payment.status == "pending":
            action = self.gateway.customer_action(payment.charge_reference)
        return PaymentView(payment.status, payment.amount, action)

    def _charge(self, payment: Payment, last: RecordedEvent | None) -> str:
        return self._record_charge(payment, last, self.gateway.charge(_request(payment)))

    def _look_up(self, payment: Payment, last: RecordedEvent | None) -> str:
        result = self.gateway.charge_status(payment.charge_reference)
        if result.status == "pending":
            return "still pending"
        return self._record_charge(payment, last, result)

    def _fence(self, payment: Payment, last: RecordedEvent | None) -> str:
        return self._record_charge(payment, last, self.gateway.fence(_request(payment)))

    def _cancel(self, payment: Payment, last: RecordedEvent | None) -> str:
        key = payment.call_key or payment.charge_key
        result = self.gateway.cancel(payment.charge_reference, key)
        if result.status == "pending":
            return "still pending"
        return self._record_charge(payment, last, result)

    def _record_charge(
        self, payment: Payment, last: RecordedEvent | None, result: ChargeResult
    ) -> str:
        command = RecordChargeOutcome(
            payment.id,
            payment.attempt,
            result.status,
            result.reference or payment.charge_reference or None,
            result.reason,
            result.captured,
        )
        return self._record(command, last, f"{payment.charge_key}/{result.status}")

    def _refund(self, payment: Payment, last: RecordedEvent | None) -> str:
        result = self.gateway.refund(
            payment.id, payment.charge_reference, payment.refund_amount, payment.refund_key
        )
        command = RecordRefundOutcome(
            payment.id,
            result.status,
            result.reference,
            result.reason,
            attempt=payment.refunds,
            whole_charge=result.whole_charge,
        )
        return self._record(command, last, f"{payment.refund_key}/{result.status}")

    def _current(self, order_id: str) -> tuple[Payment | None, RecordedEvent | None]:
        """The payment as last recorded, and its last event (whose correlation the
        answer carries on); read outside any transaction."""
        with self.engine.connect() as conn, autocommit(conn):
            history = self.bus.store.read_stream(conn, Payment.stream_for(order_id))
        if not history:
            return None, None
        payment = Payment(order_id)
        payment.replay(recorded.event for recorded in history)
        return payment, history[-1]

    def _record(self, command: Command, last: RecordedEvent | None, answer: str) -> str:
        cause = last.metadata if last is not None else Metadata()
        metadata = Metadata(
            message_id=str(uuid.uuid5(_IDS, answer)),  # the same answer twice: one command
            correlation_id=cause.correlation_id,
            causation_id=cause.message_id,
            actor=PROVIDER_ACTOR,
        )
        result = self.bus.dispatch(command, metadata)
        outcome = getattr(command, "outcome", "")
        if isinstance(result, Failure):
            log.warning(
                "provider answer not recorded",
                extra={"command": type(command).__name__, "code": result.code,
                       "detail": result.message},
            )  # fmt: skip
            return f"{outcome}, not recorded: {result.code}"
        return str(outcome)


def _request(payment: Payment) -> ChargeRequest:
    """The charge of the payment's current attempt, as the provider is asked for it."""
    return ChargeRequest(
        payment.id, payment.attempt, payment.amount, payment.payment_method, payment.charge_key
    )
