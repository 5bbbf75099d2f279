"""One handler per payments command: load, decide, save, and track where the payment
stands with the provider. No handler calls the provider: that happens in a job, outside
any transaction (payments.provider_calls)."""

from __future__ import annotations

from kernel.command_bus import CommandBus
from kernel.unit_of_work import UnitOfWork
from payments import tracking
from payments.commands import (
    AbandonPayment,
    ProcessPayment,
    RecordChargeOutcome,
    RecordRefundOutcome,
    RefundPayment,
)
from payments.domain import Payment


def register(bus: CommandBus) -> None:
    bus.register(ProcessPayment, process_payment)
    bus.register(RefundPayment, refund_payment)
    bus.register(AbandonPayment, abandon_payment)
    bus.register(RecordChargeOutcome, record_charge_outcome)
    bus.register(RecordRefundOutcome, record_refund_outcome)


def process_payment(command: ProcessPayment, uow: UnitOfWork) -> str:
    payment = uow.load(Payment, command.order_id) or Payment(command.order_id)
    payment.request(command.amount, command.payment_token, command.customer_id)
    return _save(uow, payment)


def refund_payment(command: RefundPayment, uow: UnitOfWork) -> str:
    payment = uow.get(Payment, command.order_id)
    payment.request_refund(command.reason, command.amount, command.refund_id)
    return _save(uow, payment)


def abandon_payment(command: AbandonPayment, uow: UnitOfWork) -> str:
    payment = uow.load(Payment, command.order_id)
    if payment is None:
        return command.order_id  # never asked for: nothing to stop
    payment.abandon(command.reason)
    return _save(uow, payment)


def record_charge_outcome(command: RecordChargeOutcome, uow: UnitOfWork) -> str:
    payment = uow.get(Payment, command.order_id)
    payment.record_charge(
        command.attempt,
        command.outcome,
        command.provider_reference,
        command.reason,
        command.amount_captured,
        command.provider_event_id,
    )
    return _save(uow, payment)


def record_refund_outcome(command: RecordRefundOutcome, uow: UnitOfWork) -> str:
    payment = uow.get(Payment, command.order_id)
    payment.record_refund(
        command.outcome,
        command.provider_reference,
        command.reason,
        command.provider_event_id,
        command.attempt,
        command.whole_charge,
    )
    return _save(uow, payment)


def _save(uow: UnitOfWork, payment: Payment) -> str:
    if payment.pending_events:
        uow.save(payment)
        tracking.track(uow.conn, payment)
    return payment.id
