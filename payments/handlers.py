"""One handler per payments command: load, ask the gateway if due, decide, save."""

from __future__ import annotations

from functools import partial

from kernel.command_bus import CommandBus
from kernel.unit_of_work import UnitOfWork
from payments.commands import CompletePayment, ProcessPayment, RefundPayment
from payments.domain import Payment
from payments.gateway import PaymentGateway


def register(bus: CommandBus, gateway: PaymentGateway) -> None:
    bus.register(ProcessPayment, partial(process_payment, gateway=gateway))
    bus.register(RefundPayment, partial(refund_payment, gateway=gateway))
    bus.register(CompletePayment, complete_payment)


def process_payment(command: ProcessPayment, uow: UnitOfWork, *, gateway: PaymentGateway) -> str:
    payment = uow.load(Payment, command.order_id) or Payment(command.order_id)
    if payment.charge_due(command.amount):
        result = gateway.charge(
            command.order_id, command.amount, command.payment_token, _key("charge", uow)
        )
        payment.process(command.amount, result)
        uow.save(payment)
    return payment.id


def refund_payment(command: RefundPayment, uow: UnitOfWork, *, gateway: PaymentGateway) -> str:
    payment = uow.get(Payment, command.order_id)
    if payment.refund_due():
        result = gateway.refund(payment.charge_reference, payment.amount, _key("refund", uow))
        payment.refund(command.reason, result)
        uow.save(payment)
    return payment.id


def complete_payment(command: CompletePayment, uow: UnitOfWork) -> str:
    payment = uow.get(Payment, command.order_id)
    payment.complete(command.provider_event_id, command.outcome, command.reason)
    uow.save(payment)
    return payment.id


def _key(operation: str, uow: UnitOfWork) -> str:
    # The bus retries a command under the same message id, so the provider sees the same key.
    return f"{operation}:{uow.metadata.message_id}"
