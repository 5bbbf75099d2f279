from __future__ import annotations

import pytest

from config.bootstrap import Application
from kernel.command_bus import CommandBus
from kernel.money import Money
from kernel.results import Failure, Success
from payments.commands import ProcessPayment, RefundPayment
from payments.events import PaymentRefunded, PaymentSucceeded
from tests.integration.payments.conftest import RecordingGateway, payment_events

EUR_10 = Money(1000, "EUR")


def test_a_succeeded_payment_is_refunded_at_the_provider(
    application: Application, recorded_bus: CommandBus, gateway: RecordingGateway
) -> None:
    recorded_bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_visa"))

    result = recorded_bus.dispatch(RefundPayment("o-1", "order cancelled"))

    assert isinstance(result, Success)
    assert result.aggregate_id == "o-1"
    charged, refunded = payment_events(application, "o-1")
    assert isinstance(charged, PaymentSucceeded)
    assert isinstance(refunded, PaymentRefunded)
    assert refunded == PaymentRefunded(
        "o-1", EUR_10, "order cancelled", refunded.provider_reference
    )
    assert refunded.provider_reference.startswith("sim_re_")
    ((reference, amount, _key),) = gateway.refunds
    assert (reference, amount) == (charged.provider_reference, EUR_10)


def test_refunding_twice_refunds_once(
    application: Application, recorded_bus: CommandBus, gateway: RecordingGateway
) -> None:
    recorded_bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_visa"))
    recorded_bus.dispatch(RefundPayment("o-1", "order cancelled"))

    again = recorded_bus.dispatch(RefundPayment("o-1", "order cancelled"))

    assert isinstance(again, Success)
    assert len(gateway.refunds) == 1
    assert [type(e) for e in payment_events(application, "o-1")] == [
        PaymentSucceeded,
        PaymentRefunded,
    ]


@pytest.mark.parametrize("token", ["tok_declined", "tok_async"])
def test_a_payment_that_has_not_succeeded_cannot_be_refunded(
    application: Application, recorded_bus: CommandBus, gateway: RecordingGateway, token: str
) -> None:
    recorded_bus.dispatch(ProcessPayment("o-1", EUR_10, token))

    result = recorded_bus.dispatch(RefundPayment("o-1", "order cancelled"))

    assert isinstance(result, Failure)
    assert result.code == "payment_not_refundable"
    assert gateway.refunds == []
    assert len(payment_events(application, "o-1")) == 1


def test_refunding_an_order_without_payment_is_not_found(application: Application) -> None:
    result = application.bus.dispatch(RefundPayment("o-unknown", "order cancelled"))

    assert isinstance(result, Failure)
    assert result.code == "not_found"
