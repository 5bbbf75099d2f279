"""ProcessPayment and RefundPayment only record what is due; `ProviderCalls.settle` (the
payments workers' job) makes the call at the local Stripe, outside any transaction, and
records the answer through the bus."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
import stripe

from config.bootstrap import Application
from config.settings import Settings
from kernel.messages import new_id
from kernel.money import Money
from kernel.results import Failure, Success
from payments import tracking
from payments.commands import AbandonPayment, ProcessPayment, RefundPayment
from payments.domain import charge_key, refund_key
from payments.events import (
    PaymentAbandoned,
    PaymentCancellationRequested,
    PaymentFailed,
    PaymentPending,
    PaymentRefunded,
    PaymentRequested,
    PaymentSucceeded,
    RefundRequested,
)
from payments.gateway import (
    ChargeRequest,
    ChargeResult,
    CustomerAction,
    ProviderUnavailable,
    RefundResult,
)
from payments.provider_calls import PROVIDER_ACTOR, ProviderCalls
from payments.stripe_gateway import StripeGateway
from tests.integration.payments.conftest import (
    EUR_10,
    intents_of,
    job_of,
    paid,
    payment_events,
    payment_history,
    queued_calls,
    refunds_of,
    request_payment,
    settle,
    unanswered,
)
from tests.support.payments import authenticate


def refund(application: Application, order_id: str, reason: str = "damaged in transit") -> None:
    result = application.bus.dispatch(RefundPayment(order_id, reason))
    assert isinstance(result, Success), result


# --- asking -------------------------------------------------------------------------


def test_asking_for_a_charge_records_it_and_queues_the_call_without_making_it(
    application: Application, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    request_payment(application, order_id, "pm_card_visa")

    assert payment_events(application, order_id) == [
        PaymentRequested(order_id, EUR_10, "pm_card_visa", 1)
    ]
    assert intents_of(stripe_client, order_id) == []
    key = charge_key(order_id, 1)
    assert queued_calls(application) == [key]
    job = job_of(application, key)
    assert job is not None
    assert (job.func_name, job.args) == ("config.jobs.settle_payment", (order_id,))
    assert job.retries_left == 8
    assert job.retry_intervals == [1, 2, 4, 8, 15, 30, 60, 120]


def test_asking_again_records_and_queues_nothing_more(
    application: Application, order_id: str
) -> None:
    request_payment(application, order_id, "pm_card_visa")

    request_payment(application, order_id, "pm_card_visa")

    assert len(payment_events(application, order_id)) == 1
    assert queued_calls(application) == [charge_key(order_id, 1)]


@pytest.mark.parametrize("amount", [0, -5])
def test_a_charge_of_nothing_is_refused(
    application: Application, order_id: str, amount: int
) -> None:
    result = application.bus.dispatch(ProcessPayment(order_id, Money(amount, "EUR"), "pm_x"))

    assert isinstance(result, Failure)
    assert result.code == "invalid_amount"
    assert payment_events(application, order_id) == []
    assert queued_calls(application) == []


# --- charging -----------------------------------------------------------------------


def test_a_settled_charge_records_the_intent_and_what_it_captured(
    application: Application, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    request_payment(application, order_id, "pm_card_visa")

    assert settle(application, order_id) == "succeeded"

    (intent,) = intents_of(stripe_client, order_id)
    requested, succeeded = payment_history(application, order_id)
    assert succeeded.event == PaymentSucceeded(order_id, EUR_10, intent["id"], None, EUR_10)
    assert succeeded.metadata.actor == PROVIDER_ACTOR
    assert succeeded.metadata.correlation_id == requested.metadata.correlation_id


@pytest.mark.parametrize(
    ("payment_method", "reason"),
    [
        ("pm_card_visa_chargeDeclined", "generic_decline"),
        ("pm_card_visa_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ],
)
def test_a_declined_charge_records_the_decline_code(
    application: Application, order_id: str, payment_method: str, reason: str
) -> None:
    request_payment(application, order_id, payment_method)

    assert settle(application, order_id) == "failed"

    assert payment_events(application, order_id)[1:] == [PaymentFailed(order_id, EUR_10, reason)]


def test_an_unusable_payment_method_records_a_failure(
    application: Application, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    request_payment(application, order_id, "pm_no_such_method")

    assert settle(application, order_id) == "failed"

    (failed,) = payment_events(application, order_id)[1:]
    assert isinstance(failed, PaymentFailed)
    assert failed.reason not in ("", "unspecified")
    assert intents_of(stripe_client, order_id) == []


def test_a_3d_secure_charge_is_pending_then_looked_up_once_authenticated(
    application: Application,
    settings: Settings,
    stripe_client: stripe.StripeClient,
    order_id: str,
) -> None:
    request_payment(application, order_id, "pm_card_authenticationRequired")

    assert settle(application, order_id) == "pending"
    (intent,) = intents_of(stripe_client, order_id)
    assert payment_events(application, order_id)[1:] == [
        PaymentPending(order_id, EUR_10, intent["id"])
    ]
    assert settle(application, order_id) == "still pending"
    assert len(payment_events(application, order_id)) == 2

    authenticate(settings, intent["id"])

    assert settle(application, order_id) == "succeeded"
    assert payment_events(application, order_id)[2:] == [
        PaymentSucceeded(order_id, EUR_10, intent["id"], None, EUR_10)
    ]
    assert len(intents_of(stripe_client, order_id)) == 1


def test_a_failed_authentication_fails_the_pending_payment(
    application: Application,
    settings: Settings,
    stripe_client: stripe.StripeClient,
    order_id: str,
) -> None:
    request_payment(application, order_id, "pm_card_authenticationRequired")
    settle(application, order_id)
    (intent,) = intents_of(stripe_client, order_id)

    authenticate(settings, intent["id"], success=False)

    assert settle(application, order_id) == "failed"
    assert payment_events(application, order_id)[2:] == [
        PaymentFailed(order_id, EUR_10, "payment_intent_authentication_failure")
    ]


def awaiting(application: Application) -> list[str]:
    """The orders whose payments wait on a provider call."""
    with application.engine.connect() as conn:
        return [found.order_id for found in tracking.overdue(conn, older_than=0)]


def abandon(application: Application, order_id: str) -> None:
    result = application.bus.dispatch(AbandonPayment(order_id, "payment timed out"))
    assert isinstance(result, Success), result


def test_an_abandoned_charge_is_never_made(
    application: Application,
    gateway: StripeGateway,
    stripe_client: stripe.StripeClient,
    order_id: str,
) -> None:
    request_payment(application, order_id, "pm_card_visa")

    abandon(application, order_id)
    assert awaiting(application) == [order_id]  # a call may have reached Stripe: fence it

    assert settle(application, order_id) == "failed"
    (fence,) = intents_of(stripe_client, order_id)  # the key's harmless claim, cancelled
    assert (fence["status"], fence["metadata"]["fence"]) == ("canceled", "abandoned")
    assert payment_events(application, order_id)[1:] == [
        PaymentAbandoned(order_id, EUR_10, "payment timed out", 1),
        PaymentFailed(order_id, EUR_10, "abandoned"),
    ]
    assert awaiting(application) == []
    # A charge call still on its way (a job retried late) is refused by Stripe now.
    late = ChargeRequest(order_id, 1, EUR_10, "pm_card_visa", charge_key(order_id, 1))
    with pytest.raises(stripe.IdempotencyError):
        gateway.charge(late)
    assert [intent["status"] for intent in intents_of(stripe_client, order_id)] == ["canceled"]


def test_an_abandoned_charge_whose_answer_was_lost_is_recorded_and_so_refunded(
    application: Application,
    gateway: StripeGateway,
    stripe_client: stripe.StripeClient,
    order_id: str,
) -> None:
    request_payment(application, order_id, "pm_card_visa")
    with pytest.raises(ProviderUnavailable):  # Stripe charged; the answer never came back
        ProviderCalls(application.engine, application.bus, AnswersLost(gateway)).settle(order_id)
    abandon(application, order_id)

    assert settle(application, order_id) == "succeeded"

    (intent,) = intents_of(stripe_client, order_id)  # no second charge, no claim either
    assert intent["status"] == "succeeded"
    assert payment_events(application, order_id)[1:] == [
        PaymentAbandoned(order_id, EUR_10, "payment timed out", 1),
        PaymentSucceeded(order_id, EUR_10, intent["id"], None, EUR_10),
    ]
    assert awaiting(application) == []


def test_an_abandoned_3d_secure_charge_is_cancelled_at_the_provider(
    application: Application,
    settings: Settings,
    stripe_client: stripe.StripeClient,
    order_id: str,
) -> None:
    request_payment(application, order_id, "pm_card_authenticationRequired")
    settle(application, order_id)
    (intent,) = intents_of(stripe_client, order_id)

    abandon(application, order_id)
    assert awaiting(application) == [order_id]  # the cancellation
    assert settle(application, order_id) == "failed"

    assert stripe_client.v1.payment_intents.retrieve(intent["id"]).status == "canceled"
    assert payment_events(application, order_id)[2:] == [
        PaymentCancellationRequested(order_id, EUR_10, "payment timed out", intent["id"], 1),
        PaymentFailed(order_id, EUR_10, "canceled"),
    ]
    assert awaiting(application) == []


def test_a_3d_secure_charge_completed_before_its_cancellation_is_recorded_as_paid(
    application: Application,
    settings: Settings,
    stripe_client: stripe.StripeClient,
    order_id: str,
) -> None:
    request_payment(application, order_id, "pm_card_authenticationRequired")
    settle(application, order_id)
    (intent,) = intents_of(stripe_client, order_id)
    abandon(application, order_id)

    authenticate(settings, intent["id"])  # the customer was quicker than the cancel

    assert settle(application, order_id) == "succeeded"  # to be refunded by the saga
    assert payment_events(application, order_id)[-1] == PaymentSucceeded(
        order_id, EUR_10, intent["id"], None, EUR_10
    )


def test_settling_again_calls_and_records_nothing(
    application: Application, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    paid(application, order_id)

    assert settle(application, order_id) == "nothing due: succeeded"

    assert len(payment_events(application, order_id)) == 2
    assert len(intents_of(stripe_client, order_id)) == 1


def test_settling_an_order_without_payment_does_nothing(application: Application) -> None:
    assert settle(application, f"o-{new_id()}") == "no payment"


def test_a_new_attempt_after_a_decline_is_a_new_charge(
    application: Application, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    request_payment(application, order_id, "pm_card_visa_chargeDeclined")
    settle(application, order_id)

    request_payment(application, order_id, "pm_card_visa")
    assert job_of(application, charge_key(order_id, 2)) is not None
    assert settle(application, order_id) == "succeeded"

    second = next(i for i in intents_of(stripe_client, order_id) if i["status"] == "succeeded")
    assert second["metadata"]["attempt"] == "2"
    assert payment_events(application, order_id)[2:] == [
        PaymentRequested(order_id, EUR_10, "pm_card_visa", 2),
        PaymentSucceeded(order_id, EUR_10, second["id"], None, EUR_10),
    ]


def test_concurrent_settles_charge_and_record_once(
    application: Application, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    request_payment(application, order_id, "pm_card_visa")
    barrier = threading.Barrier(4)
    answers: list[str] = []

    def settle_now() -> None:
        barrier.wait()
        try:
            answers.append(settle(application, order_id))
        except ProviderUnavailable:  # the key in use by another: the job is retried
            answers.append("unavailable")

    threads = [threading.Thread(target=settle_now) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert "succeeded" in answers, answers
    (intent,) = intents_of(stripe_client, order_id)
    assert payment_events(application, order_id)[1:] == [
        PaymentSucceeded(order_id, EUR_10, intent["id"], None, EUR_10)
    ]


# --- refunding ----------------------------------------------------------------------


def test_a_refund_is_asked_for_the_captured_amount_and_made_by_settle(
    application: Application, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    charged = paid(application, order_id)

    refund(application, order_id)

    assert payment_events(application, order_id)[2:] == [
        RefundRequested(order_id, EUR_10, "damaged in transit", 1)
    ]
    assert refunds_of(stripe_client, charged.provider_reference) == []
    assert queued_calls(application)[-1] == refund_key(order_id, 1)

    assert settle(application, order_id) == "succeeded"

    (made,) = refunds_of(stripe_client, charged.provider_reference)
    assert made["amount"] == 1000
    assert payment_events(application, order_id)[3:] == [
        PaymentRefunded(order_id, EUR_10, "damaged in transit", made["id"], "", True, EUR_10)
    ]
    assert settle(application, order_id) == "nothing due: refunded"
    assert len(refunds_of(stripe_client, charged.provider_reference)) == 1


def test_a_refund_already_made_at_the_dashboard_is_recorded_as_the_refund(
    application: Application, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    charged = paid(application, order_id)
    refund(application, order_id)
    at_the_dashboard = stripe_client.v1.refunds.create(
        params={"payment_intent": charged.provider_reference}
    )

    assert settle(application, order_id) == "succeeded"

    refunded = payment_events(application, order_id)[-1]
    assert refunded == PaymentRefunded(
        order_id, EUR_10, "damaged in transit", at_the_dashboard.id, "", True, EUR_10
    )
    assert len(refunds_of(stripe_client, charged.provider_reference)) == 1


@pytest.mark.parametrize(
    ("payment_method", "settled"),
    [
        ("pm_card_visa", False),  # asked for, not charged yet
        ("pm_card_visa_chargeDeclined", True),
        ("pm_card_authenticationRequired", True),  # pending on 3-D Secure
    ],
)
def test_only_a_successful_charge_can_be_refunded(
    application: Application, order_id: str, payment_method: str, settled: bool
) -> None:
    request_payment(application, order_id, payment_method)
    if settled:
        settle(application, order_id)
    before = payment_events(application, order_id)

    result = application.bus.dispatch(RefundPayment(order_id, "too early"))

    assert isinstance(result, Failure)
    assert result.code == "payment_not_refundable"
    assert payment_events(application, order_id) == before
    assert refund_key(order_id, 1) not in queued_calls(application)


def test_refunding_an_order_without_payment_is_not_found(application: Application) -> None:
    result = application.bus.dispatch(RefundPayment(f"o-{new_id()}", "order cancelled"))

    assert isinstance(result, Failure)
    assert result.code == "not_found"


# --- when the provider cannot be asked, or its answer is lost ------------------------


def test_an_unavailable_provider_records_nothing_and_the_same_call_succeeds_later(
    application: Application,
    settings: Settings,
    stripe_client: stripe.StripeClient,
    closed_port: int,
    order_id: str,
) -> None:
    request_payment(application, order_id, "pm_card_visa")
    away = unanswered(f"http://127.0.0.1:{closed_port}", settings)

    with pytest.raises(ProviderUnavailable):
        ProviderCalls(application.engine, application.bus, away).settle(order_id)

    assert len(payment_events(application, order_id)) == 1
    assert settle(application, order_id) == "succeeded"
    (intent,) = intents_of(stripe_client, order_id)
    assert payment_events(application, order_id)[-1] == PaymentSucceeded(
        order_id, EUR_10, intent["id"], None, EUR_10
    )


@dataclass
class AnswersLost:
    """Makes every call at the provider, then loses its answer (a timeout after the
    provider acted): the outcome is unknown to the caller."""

    gateway: StripeGateway
    calls: list[str] = field(default_factory=list)

    def charge(self, request: ChargeRequest) -> ChargeResult:
        self.calls.append(f"charge {request.idempotency_key}")
        self.gateway.charge(request)
        raise ProviderUnavailable("read timed out")

    def charge_status(self, reference: str) -> ChargeResult:
        self.calls.append(f"look up {reference}")
        self.gateway.charge_status(reference)
        raise ProviderUnavailable("read timed out")

    def customer_action(self, reference: str) -> CustomerAction:
        self.calls.append(f"customer action {reference}")
        self.gateway.customer_action(reference)
        raise ProviderUnavailable("read timed out")

    def fence(self, request: ChargeRequest) -> ChargeResult:
        self.calls.append(f"fence {request.idempotency_key}")
        self.gateway.fence(request)
        raise ProviderUnavailable("read timed out")

    def cancel(self, reference: str, idempotency_key: str) -> ChargeResult:
        self.calls.append(f"cancel {reference}")
        self.gateway.cancel(reference, idempotency_key)
        raise ProviderUnavailable("read timed out")

    def refund(
        self, order_id: str, charge_reference: str, amount: Money, idempotency_key: str
    ) -> RefundResult:
        self.calls.append(f"refund {idempotency_key}")
        self.gateway.refund(order_id, charge_reference, amount, idempotency_key)
        raise ProviderUnavailable("read timed out")


def test_a_charge_whose_answer_was_lost_is_asked_again_and_charged_once(
    application: Application,
    gateway: StripeGateway,
    stripe_client: stripe.StripeClient,
    order_id: str,
) -> None:
    request_payment(application, order_id, "pm_card_visa")
    losing = AnswersLost(gateway)
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            ProviderCalls(application.engine, application.bus, losing).settle(order_id)
    (intent,) = intents_of(stripe_client, order_id)
    assert intent["status"] == "succeeded"  # charged, and the shop does not know it yet
    assert len(payment_events(application, order_id)) == 1

    assert settle(application, order_id) == "succeeded"

    assert losing.calls == [f"charge {charge_key(order_id, 1)}"] * 2
    assert len(intents_of(stripe_client, order_id)) == 1
    assert payment_events(application, order_id)[-1] == PaymentSucceeded(
        order_id, EUR_10, intent["id"], None, EUR_10
    )


def test_a_refund_whose_answer_was_lost_is_asked_again_and_refunded_once(
    application: Application,
    gateway: StripeGateway,
    stripe_client: stripe.StripeClient,
    order_id: str,
) -> None:
    charged = paid(application, order_id)
    refund(application, order_id)
    losing = AnswersLost(gateway)
    with pytest.raises(ProviderUnavailable):
        ProviderCalls(application.engine, application.bus, losing).settle(order_id)
    assert isinstance(payment_events(application, order_id)[-1], RefundRequested)

    assert settle(application, order_id) == "succeeded"

    (made,) = refunds_of(stripe_client, charged.provider_reference)
    assert payment_events(application, order_id)[-1] == PaymentRefunded(
        order_id, EUR_10, "damaged in transit", made["id"], "", True, EUR_10
    )


def test_a_pending_charge_looked_up_while_the_provider_is_away_stays_pending(
    application: Application, settings: Settings, closed_port: int, order_id: str
) -> None:
    request_payment(application, order_id, "pm_card_authenticationRequired")
    settle(application, order_id)
    away = unanswered(f"http://127.0.0.1:{closed_port}", settings)

    with pytest.raises(ProviderUnavailable):
        ProviderCalls(application.engine, application.bus, away).settle(order_id)

    assert isinstance(payment_events(application, order_id)[-1], PaymentPending)
