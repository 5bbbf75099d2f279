"""Given payment events, when a decision is taken, then these events (or this error).

The Payment aggregate never calls the provider: it says which call is due (and with
which idempotency key), and records the answers it is handed."""

from __future__ import annotations

import pytest

from kernel.errors import DomainError
from kernel.messages import Event
from kernel.money import Money
from payments.domain import (
    REFUNDED_AT_PROVIDER,
    Payment,
    charge_key,
    refund_key,
)
from payments.events import (
    PaymentAbandoned,
    PaymentCancellationRequested,
    PaymentFailed,
    PaymentPending,
    PaymentRefunded,
    PaymentRequested,
    PaymentSucceeded,
    RefundFailed,
    RefundQueued,
    RefundRequested,
)
from tests.support.snapshots import stored

ORDER = "o-1"
EUR_10 = Money(1000, "EUR")
EUR_9 = Money(900, "EUR")
REQUESTED = PaymentRequested(ORDER, EUR_10, "pm_card_visa", 1)
PENDING = PaymentPending(ORDER, EUR_10, "pi_1")
SUCCEEDED = PaymentSucceeded(ORDER, EUR_10, "pi_1")
FAILED = PaymentFailed(ORDER, EUR_10, "card_declined")
REQUESTED_AGAIN = PaymentRequested(ORDER, EUR_10, "pm_card_mastercard", 2)
REFUND_REQUESTED = RefundRequested(ORDER, EUR_10, "damaged in transit", 1)
REFUNDED = PaymentRefunded(ORDER, EUR_10, "damaged in transit", "re_1", "", True, EUR_10)
REFUND_FAILED = RefundFailed(ORDER, EUR_10, "charge_disputed")

# Every status the payment can be in, by a history that leads there.
NEW: tuple[Event, ...] = ()
AT_REQUESTED = (REQUESTED,)
AT_PENDING = (REQUESTED, PENDING)
AT_SUCCEEDED = (REQUESTED, SUCCEEDED)
AT_FAILED = (REQUESTED, FAILED)
AT_REFUNDING = (REQUESTED, SUCCEEDED, REFUND_REQUESTED)
AT_REFUNDED = (REQUESTED, SUCCEEDED, REFUND_REQUESTED, REFUNDED)
ABANDONED = PaymentAbandoned(ORDER, EUR_10, "payment timed out", 1)
CANCELLING = PaymentCancellationRequested(ORDER, EUR_10, "payment timed out", "pi_1", 1)
AT_ABANDONED = (REQUESTED, ABANDONED)
AT_CANCELLING = (REQUESTED, PENDING, CANCELLING)


def given(*events: Event) -> Payment:
    payment = Payment(ORDER)
    payment.replay(events)
    return payment


def refused(error: pytest.ExceptionInfo[DomainError], payment: Payment) -> str:
    """The refusal's code, once it is clear the refusal recorded nothing."""
    assert payment.pending_events == ()
    return error.value.code


@pytest.mark.parametrize(
    ("history", "status"),
    [
        (NEW, "new"),
        (AT_REQUESTED, "requested"),
        (AT_PENDING, "pending"),
        (AT_SUCCEEDED, "succeeded"),
        (AT_FAILED, "failed"),
        (AT_REFUNDING, "refunding"),
        (AT_REFUNDED, "refunded"),
        ((*AT_REFUNDING, REFUND_FAILED), "succeeded"),
        (AT_ABANDONED, "abandoned"),
        (AT_CANCELLING, "cancelling"),
    ],
)
def test_the_history_decides_the_status(history: tuple[Event, ...], status: str) -> None:
    assert given(*history).status == status


# --- asking for a charge -----------------------------------------------------------


def test_a_new_payment_asks_for_its_first_charge() -> None:
    payment = given()

    payment.request(EUR_10, "pm_card_visa")

    assert payment.pending_events == (REQUESTED,)
    assert payment.charge_due
    assert payment.charge_key == charge_key(ORDER, 1) == "payment-o-1-charge-1"
    assert payment.call_key == payment.charge_key


@pytest.mark.parametrize("history", [AT_REQUESTED, AT_PENDING, AT_SUCCEEDED, AT_REFUNDED])
def test_asking_again_for_the_same_amount_changes_nothing(history: tuple[Event, ...]) -> None:
    payment = given(*history)

    payment.request(EUR_10, "pm_card_visa")

    assert payment.pending_events == ()
    assert payment.attempt == 1


def test_after_a_failure_a_new_attempt_gets_a_new_key_and_may_use_another_card() -> None:
    payment = given(*AT_FAILED)
    assert not payment.charge_due
    assert payment.call_key is None

    payment.request(EUR_10, "pm_card_mastercard")

    assert payment.pending_events == (REQUESTED_AGAIN,)
    assert payment.charge_due
    assert payment.call_key == "payment-o-1-charge-2"


def test_a_new_attempt_forgets_the_failed_attempts_charge() -> None:
    payment = given(REQUESTED, PENDING, PaymentFailed(ORDER, EUR_10, "authentication_failed"))

    payment.request(EUR_10, "pm_card_visa")

    assert (payment.attempt, payment.charge_reference) == (2, "")


@pytest.mark.parametrize("history", [AT_REQUESTED, AT_PENDING, AT_SUCCEEDED, AT_REFUNDING])
@pytest.mark.parametrize("other", [EUR_9, Money(1000, "USD")])
def test_an_order_being_paid_cannot_be_paid_with_another_amount(
    history: tuple[Event, ...], other: Money
) -> None:
    payment = given(*history)

    with pytest.raises(DomainError) as error:
        payment.request(other, "pm_card_visa")

    assert refused(error, payment) == "payment_amount_mismatch"


@pytest.mark.parametrize("history", [NEW, AT_FAILED, AT_SUCCEEDED])
@pytest.mark.parametrize("amount", [0, -1])
def test_the_amount_must_be_positive(history: tuple[Event, ...], amount: int) -> None:
    payment = given(*history)

    with pytest.raises(DomainError) as error:
        payment.request(Money(amount, "EUR"), "pm_card_visa")

    assert refused(error, payment) == "invalid_amount"


# --- recording a charge's outcome --------------------------------------------------


def test_a_succeeded_charge_records_its_reference_and_what_was_captured() -> None:
    payment = given(*AT_REQUESTED)

    payment.record_charge(1, "succeeded", "pi_1", None, captured=900)

    assert payment.pending_events == (PaymentSucceeded(ORDER, EUR_10, "pi_1", None, EUR_9),)
    assert (payment.status, payment.charge_reference, payment.captured) == (
        "succeeded",
        "pi_1",
        EUR_9,
    )
    assert payment.call_key is None


def test_a_success_that_does_not_say_what_was_captured_captured_the_whole_amount() -> None:
    payment = given(*AT_REQUESTED)

    payment.record_charge(1, "succeeded", "pi_1", None)

    assert payment.pending_events == (SUCCEEDED,)
    assert payment.captured == EUR_10


@pytest.mark.parametrize(
    ("reason", "recorded"), [("insufficient_funds", "insufficient_funds"), (None, "unspecified")]
)
def test_a_failed_charge_records_its_reason(reason: str | None, recorded: str) -> None:
    payment = given(*AT_REQUESTED)

    payment.record_charge(1, "failed", None, reason)

    assert payment.pending_events == (PaymentFailed(ORDER, EUR_10, recorded),)
    assert not payment.charge_due


def test_a_charge_waiting_on_the_customer_is_pending_and_still_awaits_the_provider() -> None:
    payment = given(*AT_REQUESTED)

    payment.record_charge(1, "pending", "pi_1", None)

    assert payment.pending_events == (PENDING,)
    assert not payment.charge_due  # charged already: only its outcome is awaited
    assert payment.call_key == "payment-o-1-charge-1"


@pytest.mark.parametrize(
    ("outcome", "event"),
    [
        ("succeeded", PaymentSucceeded(ORDER, EUR_10, "pi_1", "evt_1", EUR_10)),
        ("failed", PaymentFailed(ORDER, EUR_10, "authentication_failed", "evt_1")),
    ],
)
def test_a_pending_charge_settles_with_its_later_answer(outcome: str, event: Event) -> None:
    payment = given(*AT_PENDING)

    payment.record_charge(1, outcome, "pi_1", "authentication_failed", 1000, "evt_1")

    assert payment.pending_events == (event,)


def test_pending_said_again_changes_nothing() -> None:
    payment = given(*AT_PENDING)

    payment.record_charge(1, "pending", "pi_1", None)

    assert payment.pending_events == ()


@pytest.mark.parametrize(
    ("history", "outcome"),
    [
        (AT_SUCCEEDED, "succeeded"),
        (AT_SUCCEEDED, "pending"),  # the job's "pending" after the webhook's success
        (AT_FAILED, "failed"),
        (AT_REFUNDING, "succeeded"),
        (AT_REFUNDED, "succeeded"),
        (AT_REFUNDED, "pending"),
    ],
)
def test_an_answer_the_payment_agrees_with_already_changes_nothing(
    history: tuple[Event, ...], outcome: str
) -> None:
    payment = given(*history)

    payment.record_charge(1, outcome, "pi_2", "card_declined", 1000, "evt_2")

    assert payment.pending_events == ()
    assert payment.status == given(*history).status


@pytest.mark.parametrize(
    ("history", "outcome"),
    [
        (AT_SUCCEEDED, "failed"),
        (AT_FAILED, "succeeded"),
        (AT_FAILED, "pending"),
        (AT_REFUNDED, "failed"),
    ],
)
def test_an_answer_contradicting_a_settled_payment_is_refused(
    history: tuple[Event, ...], outcome: str
) -> None:
    payment = given(*history)

    with pytest.raises(DomainError) as error:
        payment.record_charge(1, outcome, "pi_2", "card_declined")

    assert refused(error, payment) == "payment_settled"


@pytest.mark.parametrize("attempt", [1, 3])
@pytest.mark.parametrize("outcome", ["succeeded", "failed", "pending"])
def test_an_answer_about_another_attempt_is_refused(attempt: int, outcome: str) -> None:
    payment = given(*AT_FAILED, REQUESTED_AGAIN)

    with pytest.raises(DomainError) as error:
        payment.record_charge(attempt, outcome, "pi_1", "card_declined")

    assert refused(error, payment) == "payment_attempt_over"
    assert payment.charge_due


def test_an_answer_about_a_payment_never_asked_for_is_refused() -> None:
    payment = given()

    with pytest.raises(DomainError) as error:
        payment.record_charge(1, "succeeded", "pi_1", None)

    assert refused(error, payment) == "payment_unknown"


def test_an_unknown_outcome_is_invalid() -> None:
    payment = given(*AT_REQUESTED)

    with pytest.raises(DomainError) as error:
        payment.record_charge(1, "refunded", "pi_1", None)

    assert refused(error, payment) == "invalid"


@pytest.mark.parametrize("outcome", ["succeeded", "pending"])
@pytest.mark.parametrize("reference", [None, ""])
def test_a_charge_made_needs_the_providers_reference(outcome: str, reference: str | None) -> None:
    payment = given(*AT_REQUESTED)

    with pytest.raises(DomainError) as error:
        payment.record_charge(1, outcome, reference, None)

    assert refused(error, payment) == "invalid"


def test_a_provider_event_seen_before_changes_nothing_even_once_the_attempt_is_over() -> None:
    # Without the provider's event id this answer would be refused (attempt 1 is over).
    failed = PaymentFailed(ORDER, EUR_10, "card_declined", "evt_1")
    payment = given(REQUESTED, PENDING, failed, REQUESTED_AGAIN)
    assert payment.provider_events == {"evt_1"}

    payment.record_charge(1, "failed", "pi_1", "card_declined", provider_event_id="evt_1")

    assert payment.pending_events == ()


def test_a_provider_event_id_is_remembered_with_the_outcome_it_brought() -> None:
    payment = given(*AT_PENDING)

    payment.record_charge(1, "succeeded", "pi_1", None, 1000, provider_event_id="evt_1")

    assert payment.provider_events == {"evt_1"}
    assert given(*AT_PENDING, *payment.pending_events).provider_events == {"evt_1"}


# --- abandoning a charge ----------------------------------------------------------


def test_abandoning_a_charge_not_yet_made_means_it_is_not_made() -> None:
    payment = given(*AT_REQUESTED)

    payment.abandon("payment timed out")

    assert payment.pending_events == (ABANDONED,)
    assert not payment.charge_due
    assert payment.fence_due  # a call may have reached the provider: fence its key
    assert payment.call_key == payment.charge_key


def test_abandoning_a_charge_waiting_on_the_customer_cancels_it_at_the_provider() -> None:
    payment = given(*AT_PENDING)

    payment.abandon("payment timed out")

    assert payment.pending_events == (CANCELLING,)
    assert payment.cancel_due
    assert payment.call_key == "payment-o-1-cancel-1"


@pytest.mark.parametrize("history", [NEW, AT_SUCCEEDED, AT_FAILED, AT_REFUNDED, AT_ABANDONED])
def test_abandoning_a_settled_or_abandoned_payment_changes_nothing(
    history: tuple[Event, ...],
) -> None:
    payment = given(*history)

    payment.abandon("order cancelled")

    assert payment.pending_events == ()


@pytest.mark.parametrize("history", [AT_ABANDONED, AT_CANCELLING])
def test_a_charge_made_regardless_is_recorded_so_it_can_be_refunded(
    history: tuple[Event, ...],
) -> None:
    payment = given(*history)

    payment.record_charge(1, "succeeded", "pi_1", None, 1000)

    assert payment.pending_events == (PaymentSucceeded(ORDER, EUR_10, "pi_1", None, EUR_10),)
    assert payment.status == "succeeded"


@pytest.mark.parametrize("reason", ["abandoned", "card_declined"])
def test_an_abandoned_charge_found_never_made_or_declined_fails(reason: str) -> None:
    payment = given(*AT_ABANDONED)

    payment.record_charge(1, "failed", None, reason)

    assert payment.pending_events == (PaymentFailed(ORDER, EUR_10, reason),)
    assert payment.call_key is None


def test_an_abandoned_charge_left_waiting_by_a_call_under_way_is_cancelled_too() -> None:
    payment = given(*AT_ABANDONED)

    payment.record_charge(1, "pending", "pi_1", None)

    assert payment.pending_events == (
        PaymentCancellationRequested(ORDER, EUR_10, "payment abandoned", "pi_1", 1),
    )


def test_a_cancelled_charge_fails_with_the_providers_word() -> None:
    payment = given(*AT_CANCELLING)

    payment.record_charge(1, "failed", "pi_1", "canceled")

    assert payment.pending_events == (PaymentFailed(ORDER, EUR_10, "canceled"),)


# --- refunds -----------------------------------------------------------------------


def test_a_refund_asks_for_the_amount_the_provider_captured() -> None:
    payment = given(REQUESTED, PaymentSucceeded(ORDER, EUR_10, "pi_1", None, EUR_9))

    payment.request_refund("damaged in transit")

    assert payment.pending_events == (RefundRequested(ORDER, EUR_9, "damaged in transit", 1),)
    assert payment.refund_due
    assert payment.refund_key == refund_key(ORDER, 1) == "payment-o-1-refund-1"
    assert payment.call_key == payment.refund_key


@pytest.mark.parametrize("history", [AT_REFUNDING, AT_REFUNDED])
def test_asking_for_a_refund_again_changes_nothing(history: tuple[Event, ...]) -> None:
    payment = given(*history)

    payment.request_refund("again")

    assert payment.pending_events == ()


@pytest.mark.parametrize("history", [NEW, AT_REQUESTED, AT_PENDING, AT_FAILED])
def test_only_a_succeeded_payment_can_be_refunded(history: tuple[Event, ...]) -> None:
    payment = given(*history)

    with pytest.raises(DomainError) as error:
        payment.request_refund("too early")

    assert refused(error, payment) == "payment_not_refundable"


def test_the_refund_asked_for_is_recorded_with_its_reason_and_reference() -> None:
    payment = given(*AT_REFUNDING)

    payment.record_refund("succeeded", "re_1", None)

    assert payment.pending_events == (REFUNDED,)
    assert payment.call_key is None
    assert not payment.refund_due


def test_a_refund_made_at_the_provider_refunds_a_succeeded_payment() -> None:
    payment = given(REQUESTED, PaymentSucceeded(ORDER, EUR_10, "pi_1", None, EUR_9))

    payment.record_refund("succeeded", "re_9", None, provider_event_id="evt_9")

    assert payment.pending_events == (
        PaymentRefunded(ORDER, EUR_9, REFUNDED_AT_PROVIDER, "re_9", "", True, EUR_9),
    )


@pytest.mark.parametrize(
    ("reason", "recorded"), [("charge_disputed", "charge_disputed"), (None, "unspecified")]
)
def test_a_refused_refund_returns_the_payment_to_succeeded(
    reason: str | None, recorded: str
) -> None:
    payment = given(*AT_REFUNDING)

    payment.record_refund("failed", None, reason)

    assert payment.pending_events == (RefundFailed(ORDER, EUR_10, recorded),)
    assert payment.status == "succeeded"
    assert payment.call_key is None


def test_after_a_refused_refund_another_refund_gets_a_new_key() -> None:
    payment = given(*AT_REFUNDING, REFUND_FAILED)

    payment.request_refund("second try")

    assert payment.pending_events == (RefundRequested(ORDER, EUR_10, "second try", 2),)
    assert payment.call_key == "payment-o-1-refund-2"


def test_a_refund_failure_nobody_asked_for_changes_nothing() -> None:
    payment = given(*AT_SUCCEEDED)

    payment.record_refund("failed", None, "charge_disputed")

    assert payment.pending_events == ()
    assert payment.status == "succeeded"


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_a_refunded_payment_stays_refunded(outcome: str) -> None:
    payment = given(*AT_REFUNDED)

    payment.record_refund(outcome, "re_2", "charge_disputed")

    assert payment.pending_events == ()


@pytest.mark.parametrize("history", [NEW, AT_REQUESTED, AT_PENDING, AT_FAILED])
def test_nothing_to_refund_before_a_charge_succeeded(history: tuple[Event, ...]) -> None:
    payment = given(*history)

    with pytest.raises(DomainError) as error:
        payment.record_refund("succeeded", "re_1", None)

    assert refused(error, payment) == "payment_not_refundable"


def test_a_refund_outcome_must_be_known_and_a_refund_made_referenced() -> None:
    payment = given(*AT_REFUNDING)

    with pytest.raises(DomainError) as unknown:
        payment.record_refund("pending", "re_1", None)
    with pytest.raises(DomainError) as unreferenced:
        payment.record_refund("succeeded", None, None)

    assert (unknown.value.code, unreferenced.value.code) == ("invalid", "invalid")
    assert payment.pending_events == ()


def test_a_provider_event_seen_before_does_not_refund() -> None:
    payment = given(REQUESTED, PENDING, PaymentSucceeded(ORDER, EUR_10, "pi_1", "evt_1"))

    payment.record_refund("succeeded", "re_1", None, provider_event_id="evt_1")

    assert payment.pending_events == ()


# --- partial refunds ---------------------------------------------------------------

EUR_3 = Money(300, "EUR")
EUR_4 = Money(400, "EUR")
RETURN_1 = RefundRequested(ORDER, EUR_3, "returned", 1, "ret-1")
RETURN_1_DONE = PaymentRefunded(ORDER, EUR_3, "returned", "re_1", "ret-1", False, EUR_3)
AT_PARTLY_REFUNDED = (*AT_SUCCEEDED, RETURN_1, RETURN_1_DONE)


def test_a_partial_refund_asks_for_just_its_amount_under_its_id() -> None:
    payment = given(*AT_SUCCEEDED)

    payment.request_refund("returned", EUR_3, "ret-1")

    assert payment.pending_events == (RETURN_1,)
    assert payment.refund_amount == EUR_3
    assert payment.call_key == refund_key(ORDER, 1)


def test_a_partial_refund_settled_leaves_the_payment_succeeded_and_not_fully_refunded() -> None:
    payment = given(*AT_SUCCEEDED, RETURN_1)

    payment.record_refund("succeeded", "re_1", None, attempt=1)

    assert payment.pending_events == (RETURN_1_DONE,)
    assert payment.status == "succeeded"
    assert payment.refundable == Money(700, "EUR")
    assert not payment.fully_refunding
    assert payment.call_key is None


def test_two_partial_refunds_then_the_rest_give_back_exactly_what_was_captured() -> None:
    payment = given(*AT_PARTLY_REFUNDED)

    payment.request_refund("returned", EUR_4, "ret-2")
    payment.record_refund("succeeded", "re_2", None, attempt=2)
    payment.request_refund("cancelled")
    payment.record_refund("succeeded", "re_3", None, attempt=3)

    assert payment.pending_events == (
        RefundRequested(ORDER, EUR_4, "returned", 2, "ret-2"),
        PaymentRefunded(ORDER, EUR_4, "returned", "re_2", "ret-2", False, Money(700, "EUR")),
        RefundRequested(ORDER, EUR_3, "cancelled", 3),
        PaymentRefunded(ORDER, EUR_3, "cancelled", "re_3", "", True, EUR_10),
    )
    assert payment.status == "refunded"


@pytest.mark.parametrize(
    "history",
    [(*AT_SUCCEEDED, RETURN_1), AT_PARTLY_REFUNDED],
    ids=["in flight", "succeeded"],
)
def test_a_refund_id_asked_for_again_changes_nothing(history: tuple[Event, ...]) -> None:
    payment = given(*history)

    payment.request_refund("returned", EUR_3, "ret-1")

    assert payment.pending_events == ()


def test_a_refund_id_the_provider_refused_may_be_asked_for_again() -> None:
    payment = given(*AT_SUCCEEDED, RETURN_1, RefundFailed(ORDER, EUR_3, "x", "ret-1"))

    payment.request_refund("returned", EUR_3, "ret-1")

    assert payment.pending_events == (RefundRequested(ORDER, EUR_3, "returned", 2, "ret-1"),)


@pytest.mark.parametrize(
    ("history", "amount"),
    [
        (AT_SUCCEEDED, Money(1001, "EUR")),
        (AT_PARTLY_REFUNDED, Money(701, "EUR")),
        ((*AT_SUCCEEDED, RETURN_1), Money(701, "EUR")),  # the one in flight counts
        ((*AT_SUCCEEDED, RETURN_1, RefundQueued(ORDER, "all", None, "cancel")), Money(1, "EUR")),
        (AT_REFUNDED, Money(1, "EUR")),
    ],
)
def test_refunding_more_than_is_left_is_refused(history: tuple[Event, ...], amount: Money) -> None:
    payment = given(*history)

    with pytest.raises(DomainError) as error:
        payment.request_refund("too much", amount, "ret-9")

    assert refused(error, payment) == "refund_exceeds_payment"


@pytest.mark.parametrize(
    ("amount", "code"),
    [(Money(0, "EUR"), "invalid_amount"), (Money(1, "USD"), "currency_mismatch")],
)
def test_a_refund_amount_must_be_positive_and_in_the_payments_currency(
    amount: Money, code: str
) -> None:
    payment = given(*AT_SUCCEEDED)

    with pytest.raises(DomainError) as error:
        payment.request_refund("odd", amount, "ret-9")

    assert refused(error, payment) == code


def test_a_refund_asked_while_one_is_in_flight_is_queued_then_asked_for_when_it_settles() -> None:
    payment = given(*AT_SUCCEEDED, RETURN_1)

    payment.request_refund("returned", EUR_4, "ret-2")
    queued = payment.pending_events
    payment.record_refund("succeeded", "re_1", None, attempt=1)

    assert queued == (RefundQueued(ORDER, "ret-2", EUR_4, "returned"),)
    assert payment.pending_events[1:] == (
        RETURN_1_DONE,
        RefundRequested(ORDER, EUR_4, "returned", 2, "ret-2"),
    )
    assert payment.refund_queue == ()
    assert payment.call_key == refund_key(ORDER, 2)


def test_a_queued_full_refund_takes_what_is_left_when_its_turn_comes() -> None:
    payment = given(*AT_SUCCEEDED, RETURN_1)

    payment.request_refund("cancelled")
    assert payment.fully_refunding  # the order cannot ship any more
    payment.record_refund("failed", None, "expired_card", attempt=1)

    assert payment.pending_events == (
        RefundQueued(ORDER, "", None, "cancelled"),
        RefundFailed(ORDER, EUR_3, "expired_card", "ret-1"),
        RefundRequested(ORDER, EUR_10, "cancelled", 2),
    )


def test_a_full_refund_asked_twice_while_queued_changes_nothing() -> None:
    payment = given(*AT_SUCCEEDED, RETURN_1, RefundQueued(ORDER, "", None, "cancelled"))

    payment.request_refund("cancelled again")

    assert payment.pending_events == ()


def test_an_answer_about_a_refund_settled_earlier_changes_nothing() -> None:
    payment = given(*AT_PARTLY_REFUNDED, RefundRequested(ORDER, EUR_4, "returned", 2, "ret-2"))

    payment.record_refund("succeeded", "re_1", None, provider_event_id="evt_1")  # known ref
    payment.record_refund("succeeded", "re_x", None, attempt=1)  # an older attempt
    payment.record_refund("failed", None, "late", attempt=1)

    assert payment.pending_events == ()
    assert payment.status == "refunding"


def test_the_whole_charge_refunded_at_the_provider_refunds_all_that_is_left() -> None:
    payment = given(*AT_PARTLY_REFUNDED, RefundQueued(ORDER, "ret-2", EUR_4, "returned"))

    payment.record_refund("succeeded", "re_9", None, "evt_9", whole_charge=True)

    assert payment.pending_events == (
        PaymentRefunded(ORDER, Money(700, "EUR"), REFUNDED_AT_PROVIDER, "re_9", "", True, EUR_10),
    )
    assert payment.refund_queue == ()
    assert payment.status == "refunded"


def test_a_payment_refunded_before_partial_refunds_existed_reads_fully_refunded() -> None:
    old = PaymentRefunded(ORDER, EUR_10, "damaged in transit", "re_1")  # as stored then
    payment = given(*AT_SUCCEEDED, REFUND_REQUESTED, old)

    assert payment.status == "refunded"
    assert payment.refunded_total == EUR_10
    assert payment.fully_refunding


# --- snapshots ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "history",
    [
        NEW,
        AT_REQUESTED,
        AT_PENDING,
        (REQUESTED, PENDING, PaymentFailed(ORDER, EUR_10, "card_declined", "evt_1")),
        (
            REQUESTED,
            PENDING,
            PaymentFailed(ORDER, EUR_10, "card_declined", "evt_1"),
            REQUESTED_AGAIN,
            PaymentSucceeded(ORDER, EUR_10, "pi_2", "evt_2", EUR_9),
            RefundRequested(ORDER, EUR_9, "damaged", 1),
        ),
        (*AT_REFUNDING, REFUND_FAILED),
        AT_REFUNDED,
        (*AT_PARTLY_REFUNDED, RefundRequested(ORDER, EUR_4, "returned", 2, "ret-2")),
        (
            *AT_SUCCEEDED,
            RETURN_1,
            RefundQueued(ORDER, "ret-2", EUR_4, "returned"),
            RefundQueued(ORDER, "", None, "cancelled"),
        ),
        AT_ABANDONED,
        AT_CANCELLING,
    ],
)
def test_a_snapshot_restores_the_same_payment(history: tuple[Event, ...]) -> None:
    payment = given(*history)

    restored = Payment.from_snapshot(ORDER, payment.version, stored(payment.snapshot_state()))

    assert vars(restored) == vars(payment)
    assert restored.call_key == payment.call_key


def test_a_restored_payment_decides_like_the_replayed_one() -> None:
    history = (REQUESTED, PENDING, PaymentFailed(ORDER, EUR_10, "card_declined", "evt_1"))
    replayed = given(*history, REQUESTED_AGAIN)
    restored = Payment.from_snapshot(ORDER, replayed.version, stored(replayed.snapshot_state()))

    for payment in (replayed, restored):
        payment.record_charge(1, "failed", "pi_1", "x", provider_event_id="evt_1")  # seen
        payment.record_charge(2, "succeeded", "pi_2", None, 900)
        payment.request_refund("damaged")

    assert restored.pending_events == replayed.pending_events
    assert restored.pending_events[-1] == RefundRequested(ORDER, EUR_9, "damaged", 1)


def test_a_refused_refund_after_a_partial_one_says_what_the_earlier_gave_back() -> None:
    payment = given(*AT_SUCCEEDED, RETURN_1, RETURN_1_DONE)
    payment.request_refund("returned", EUR_3, "ret-2")
    asked_again = given(*AT_SUCCEEDED, RETURN_1, RETURN_1_DONE, *payment.pending_events)

    asked_again.record_refund("failed", None, "expired_card", attempt=2)

    (failed,) = asked_again.pending_events
    assert failed == RefundFailed(ORDER, EUR_3, "expired_card", "ret-2", EUR_3)
