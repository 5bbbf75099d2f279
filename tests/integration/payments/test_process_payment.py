from __future__ import annotations

import threading

import pytest

from config.bootstrap import Application
from kernel.command_bus import CommandBus
from kernel.messages import Metadata
from kernel.money import Money
from kernel.results import Failure, Success
from payments.commands import ProcessPayment
from payments.events import PaymentFailed, PaymentPending, PaymentSucceeded
from payments.gateway import SimulatedGateway
from tests.integration.payments.conftest import RecordingGateway, payment_events

EUR_10 = Money(1000, "EUR")


def test_tok_visa_records_a_succeeded_payment(application: Application) -> None:
    result = application.bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_visa"))

    assert isinstance(result, Success)
    assert result.aggregate_id == "o-1"
    (event,) = payment_events(application, "o-1")
    assert isinstance(event, PaymentSucceeded)
    assert event == PaymentSucceeded("o-1", EUR_10, event.provider_reference)
    assert event.provider_reference.startswith("sim_ch_")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("tok_declined", "card_declined"),
        ("tok_insufficient_funds", "insufficient_funds"),
        ("tok_stolen", "invalid_token"),
    ],
)
def test_a_refused_card_records_a_failed_payment(
    application: Application, token: str, reason: str
) -> None:
    result = application.bus.dispatch(ProcessPayment("o-1", EUR_10, token))

    assert isinstance(result, Success)
    assert payment_events(application, "o-1") == [PaymentFailed("o-1", EUR_10, reason)]


@pytest.mark.parametrize("token", ["tok_async", "tok_timeout"])
def test_a_late_answering_provider_records_a_pending_payment(
    application: Application, token: str
) -> None:
    application.bus.dispatch(ProcessPayment("o-1", EUR_10, token))

    (event,) = payment_events(application, "o-1")
    assert isinstance(event, PaymentPending)
    assert (event.order_id, event.amount) == ("o-1", EUR_10)
    assert event.provider_reference.startswith(("sim_ch_", SimulatedGateway.ASYNC_PREFIX))


@pytest.mark.parametrize("token", ["tok_visa", "tok_async"])
def test_processing_a_paid_or_pending_order_again_charges_once(
    application: Application, recorded_bus: CommandBus, gateway: RecordingGateway, token: str
) -> None:
    first = recorded_bus.dispatch(ProcessPayment("o-1", EUR_10, token))
    again = recorded_bus.dispatch(ProcessPayment("o-1", EUR_10, token))

    assert isinstance(first, Success)
    assert isinstance(again, Success)
    assert len(gateway.charges) == 1
    assert len(payment_events(application, "o-1")) == 1


def test_the_same_command_delivered_twice_charges_once(
    application: Application, recorded_bus: CommandBus, gateway: RecordingGateway
) -> None:
    metadata = Metadata()

    first = recorded_bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_visa"), metadata)
    again = recorded_bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_visa"), metadata)

    assert first == again
    assert len(gateway.charges) == 1
    assert len(payment_events(application, "o-1")) == 1


def test_concurrent_commands_for_one_order_charge_once(
    application: Application, recorded_bus: CommandBus, gateway: RecordingGateway
) -> None:
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                recorded_bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_visa"))
            )
        )
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(isinstance(result, Success) for result in results)
    assert len(results) == 6
    assert len(gateway.charges) == 1
    assert len(payment_events(application, "o-1")) == 1


def test_the_idempotency_key_comes_from_the_command_id(
    recorded_bus: CommandBus, gateway: RecordingGateway
) -> None:
    first, second = Metadata(), Metadata()

    recorded_bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_declined"), first)
    recorded_bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_declined"), second)

    (_, _, _, first_key), (_, _, _, second_key) = gateway.charges
    assert first.message_id in first_key
    assert second.message_id in second_key


def test_a_new_attempt_after_a_failure_charges_again(
    application: Application, recorded_bus: CommandBus, gateway: RecordingGateway
) -> None:
    recorded_bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_declined"))
    recorded_bus.dispatch(ProcessPayment("o-1", EUR_10, "tok_visa"))

    assert [token for _, _, token, _ in gateway.charges] == ["tok_declined", "tok_visa"]
    failed, succeeded = payment_events(application, "o-1")
    assert failed == PaymentFailed("o-1", EUR_10, "card_declined")
    assert isinstance(succeeded, PaymentSucceeded)


def test_a_non_positive_amount_is_refused_without_charging(
    application: Application, recorded_bus: CommandBus, gateway: RecordingGateway
) -> None:
    result = recorded_bus.dispatch(ProcessPayment("o-1", Money(0, "EUR"), "tok_visa"))

    assert isinstance(result, Failure)
    assert result.code == "invalid_amount"
    assert gateway.charges == []
    assert payment_events(application, "o-1") == []
