"""Given payment events, when a decision is taken, then these events (or this error)."""

from __future__ import annotations

import pytest

from kernel.errors import DomainError
from kernel.messages import Event
from kernel.money import Money
from payments.domain import Payment
from payments.events import PaymentFailed, PaymentPending, PaymentRefunded, PaymentSucceeded
from payments.gateway import ChargeResult, RefundResult
from tests.support.snapshots import stored

ORDER = "o-1"
EUR_10 = Money(1000, "EUR")
SUCCEEDED = PaymentSucceeded(ORDER, EUR_10, "ch_1")
PENDING = PaymentPending(ORDER, EUR_10, "ch_1")
FAILED = PaymentFailed(ORDER, EUR_10, "card_declined")
REFUNDED = PaymentRefunded(ORDER, EUR_10, "customer changed mind", "re_1")


def given(*events: Event) -> Payment:
    payment = Payment(ORDER)
    payment.replay(events)
    return payment


def code_of(error: pytest.ExceptionInfo[DomainError]) -> str:
    return error.value.code


# --- ProcessPayment ------------------------------------------------------------


def test_a_successful_charge_records_the_payment_as_succeeded() -> None:
    payment = given()

    assert payment.charge_due(EUR_10)
    payment.process(EUR_10, ChargeResult.succeeded("ch_1"))

    assert payment.pending_events == (SUCCEEDED,)


@pytest.mark.parametrize("reason", ["card_declined", "insufficient_funds", "invalid_token"])
def test_a_refused_charge_records_the_failure_with_its_reason(reason: str) -> None:
    payment = given()

    payment.process(EUR_10, ChargeResult.failed(reason))

    assert payment.pending_events == (PaymentFailed(ORDER, EUR_10, reason),)


def test_a_charge_the_provider_answers_later_records_the_payment_as_pending() -> None:
    payment = given()

    payment.process(EUR_10, ChargeResult.pending("ch_1"))

    assert payment.pending_events == (PENDING,)


def test_a_failure_without_a_reason_is_recorded_as_unspecified() -> None:
    payment = given()

    payment.process(EUR_10, ChargeResult("failed"))

    assert payment.pending_events == (PaymentFailed(ORDER, EUR_10, "unspecified"),)


def test_a_success_without_a_reference_is_a_gateway_bug() -> None:
    payment = given()

    with pytest.raises(ValueError, match="malformed"):
        payment.process(EUR_10, ChargeResult("succeeded"))
    assert payment.pending_events == ()


@pytest.mark.parametrize("history", [(SUCCEEDED,), (PENDING,), (SUCCEEDED, REFUNDED)])
def test_processing_again_after_success_pending_or_refund_charges_nothing(
    history: tuple[Event, ...],
) -> None:
    payment = given(*history)

    assert not payment.charge_due(EUR_10)
    payment.process(EUR_10, ChargeResult.succeeded("ch_2"))

    assert payment.pending_events == ()


def test_processing_again_after_a_failure_retries_the_charge() -> None:
    payment = given(FAILED)

    assert payment.charge_due(EUR_10)
    payment.process(EUR_10, ChargeResult.succeeded("ch_2"))

    assert payment.pending_events == (PaymentSucceeded(ORDER, EUR_10, "ch_2"),)


@pytest.mark.parametrize("amount", [0, -1])
def test_the_amount_must_be_positive(amount: int) -> None:
    payment = given()

    with pytest.raises(DomainError) as error:
        payment.charge_due(Money(amount, "EUR"))
    assert code_of(error) == "invalid_amount"
    with pytest.raises(DomainError):
        payment.process(Money(amount, "EUR"), ChargeResult.succeeded("ch_1"))
    assert payment.pending_events == ()


@pytest.mark.parametrize("other", [Money(999, "EUR"), Money(1000, "USD")])
def test_a_paid_order_cannot_be_paid_again_with_another_amount(other: Money) -> None:
    payment = given(SUCCEEDED)

    with pytest.raises(DomainError) as error:
        payment.charge_due(other)
    assert code_of(error) == "payment_amount_mismatch"


# --- RefundPayment -------------------------------------------------------------


def test_a_succeeded_payment_is_refunded_in_full() -> None:
    payment = given(SUCCEEDED)

    assert payment.refund_due()
    payment.refund("customer changed mind", RefundResult.succeeded("re_1"))

    assert payment.pending_events == (REFUNDED,)


def test_a_payment_completed_after_pending_is_refundable() -> None:
    payment = given(PENDING, PaymentSucceeded(ORDER, EUR_10, "ch_1", "evt_1"))

    payment.refund("customer changed mind", RefundResult.succeeded("re_1"))

    assert payment.pending_events == (REFUNDED,)


def test_refunding_twice_is_a_no_op() -> None:
    payment = given(SUCCEEDED, REFUNDED)

    assert not payment.refund_due()
    payment.refund("again", RefundResult.succeeded("re_2"))

    assert payment.pending_events == ()


@pytest.mark.parametrize("history", [(), (PENDING,), (FAILED,)])
def test_only_a_succeeded_payment_can_be_refunded(history: tuple[Event, ...]) -> None:
    payment = given(*history)

    with pytest.raises(DomainError) as error:
        payment.refund("too early", RefundResult.succeeded("re_1"))
    assert code_of(error) == "payment_not_refundable"
    assert payment.pending_events == ()


def test_a_refund_the_provider_refuses_fails_and_records_nothing() -> None:
    payment = given(SUCCEEDED)

    with pytest.raises(DomainError) as error:
        payment.refund("customer changed mind", RefundResult.failed("charge_disputed"))
    assert code_of(error) == "refund_failed"
    assert "charge_disputed" in error.value.message
    assert payment.pending_events == ()


# --- CompletePayment -----------------------------------------------------------


def test_a_pending_payment_completes_as_succeeded_with_its_charge_reference() -> None:
    payment = given(PENDING)

    payment.complete("evt_1", "succeeded", None)

    assert payment.pending_events == (PaymentSucceeded(ORDER, EUR_10, "ch_1", "evt_1"),)


def test_a_pending_payment_completes_as_failed_with_the_providers_reason() -> None:
    payment = given(PENDING)

    payment.complete("evt_1", "failed", "card_declined")

    assert payment.pending_events == (PaymentFailed(ORDER, EUR_10, "card_declined", "evt_1"),)


def test_a_failed_completion_without_a_reason_is_unspecified() -> None:
    payment = given(PENDING)

    payment.complete("evt_1", "failed", None)

    assert payment.pending_events == (PaymentFailed(ORDER, EUR_10, "unspecified", "evt_1"),)


@pytest.mark.parametrize(
    "history",
    [
        (PENDING, PaymentSucceeded(ORDER, EUR_10, "ch_1", "evt_1")),
        (PENDING, PaymentFailed(ORDER, EUR_10, "card_declined", "evt_1")),
        (PENDING, PaymentFailed(ORDER, EUR_10, "card_declined", "evt_1"), PENDING),
    ],
)
def test_a_repeated_provider_event_is_a_no_op(history: tuple[Event, ...]) -> None:
    payment = given(*history)

    payment.complete("evt_1", "succeeded", None)

    assert payment.pending_events == ()


@pytest.mark.parametrize("history", [(), (SUCCEEDED,), (FAILED,), (SUCCEEDED, REFUNDED)])
def test_only_a_pending_payment_can_be_completed(history: tuple[Event, ...]) -> None:
    payment = given(*history)

    with pytest.raises(DomainError) as error:
        payment.complete("evt_2", "succeeded", None)
    assert code_of(error) == "payment_not_pending"
    assert payment.pending_events == ()


def test_a_completion_needs_a_known_outcome() -> None:
    payment = given(PENDING)

    with pytest.raises(DomainError) as error:
        payment.complete("evt_1", "maybe", None)
    assert code_of(error) == "invalid"
    assert payment.pending_events == ()


# --- Snapshots -----------------------------------------------------------------


@pytest.mark.parametrize(
    "history",
    [
        (PENDING,),
        (FAILED,),
        (SUCCEEDED, REFUNDED),
        (
            PENDING,
            PaymentFailed(ORDER, EUR_10, "card_declined", "evt_2"),
            PaymentPending(ORDER, EUR_10, "ch_2"),
            PaymentSucceeded(ORDER, EUR_10, "ch_2", "evt_1"),
        ),
    ],
)
def test_a_snapshot_restores_the_same_payment(history: tuple[Event, ...]) -> None:
    payment = given(*history)

    restored = Payment.from_snapshot(ORDER, payment.version, stored(payment.snapshot_state()))

    assert vars(restored) == vars(payment)
