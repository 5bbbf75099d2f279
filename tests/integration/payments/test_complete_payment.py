from __future__ import annotations

import pytest

from config.bootstrap import Application
from kernel.money import Money
from kernel.results import Failure, Success
from payments.commands import CompletePayment, ProcessPayment
from payments.events import PaymentFailed, PaymentPending, PaymentSucceeded
from tests.integration.payments.conftest import payment_events

EUR_10 = Money(1000, "EUR")


def test_a_pending_payment_completes_as_succeeded(application: Application) -> None:
    application.bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_async"))

    result = application.bus.dispatch(CompletePayment("o-1", "evt_1", "succeeded", None))

    assert isinstance(result, Success)
    pending, succeeded = payment_events(application, "o-1")
    assert isinstance(pending, PaymentPending)
    assert succeeded == PaymentSucceeded("o-1", EUR_10, pending.provider_reference, "evt_1")


def test_a_pending_payment_completes_as_failed(application: Application) -> None:
    application.bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_async"))

    application.bus.dispatch(CompletePayment("o-1", "evt_1", "failed", "card_declined"))

    assert payment_events(application, "o-1")[1:] == [
        PaymentFailed("o-1", EUR_10, "card_declined", "evt_1")
    ]


def test_a_repeated_provider_event_changes_nothing(application: Application) -> None:
    application.bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_async"))
    application.bus.dispatch(CompletePayment("o-1", "evt_1", "succeeded", None))

    again = application.bus.dispatch(CompletePayment("o-1", "evt_1", "succeeded", None))

    assert isinstance(again, Success)
    assert len(payment_events(application, "o-1")) == 2


@pytest.mark.parametrize(
    ("order_id", "code"), [("o-1", "payment_not_pending"), ("o-2", "not_found")]
)
def test_only_a_pending_payment_can_be_completed(
    application: Application, order_id: str, code: str
) -> None:
    application.bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_visa"))

    result = application.bus.dispatch(CompletePayment(order_id, "evt_1", "failed", None))

    assert isinstance(result, Failure)
    assert result.code == code
    assert len(payment_events(application, "o-1")) == 1
