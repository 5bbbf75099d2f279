"""Nothing waits on the provider for ever: provider_payments says since when each payment
waits, and `reconcile_payments` queues the call again for those waiting too long."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe
from rq import Queue, SimpleWorker
from sqlalchemy import text

from config import jobs
from config.bootstrap import Application
from config.queues import PAYMENTS
from config.settings import Settings
from kernel.messages import new_id
from payments import tracking
from payments.commands import RefundPayment
from payments.domain import charge_key, refund_key
from payments.events import PaymentSucceeded
from tests.integration.payments.conftest import (
    intents_of,
    job_of,
    payment_events,
    provider_row,
    queued_calls,
    request_payment,
    settle,
)
from tests.support.payments import authenticate


def backdate(application: Application, order_id: str, seconds: float) -> None:
    """Make the payment look as if it had waited on the provider for `seconds`."""
    with application.engine.begin() as conn:
        updated = conn.execute(
            text(
                "UPDATE provider_payments SET awaiting_since = now() - make_interval(secs => :s)"
                " WHERE order_id = :order AND awaiting_since IS NOT NULL"
            ),
            {"s": seconds, "order": order_id},
        ).rowcount
    assert updated == 1, f"{order_id} waits on nothing"


def forget_jobs(application: Application) -> None:
    """Lose every queued job (a Redis that lost its data, a job that ran out of retries)."""
    application.redis.flushdb()


@pytest.fixture
def served(application: Application) -> Iterator[jobs.Jobs]:
    """The jobs RQ runs (config.jobs' functions) served by the test's application, as the
    payments worker's entry point serves them."""
    previous = jobs._served
    served = jobs.Jobs(application)
    jobs.serve(served)
    yield served
    jobs._served = previous


class PaymentsWorker(SimpleWorker):
    """RQ's worker without its control channel: nobody sends it commands here, and the
    thread listening on it can hold the worker's exit back for up to a minute."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


def run_payments_worker(application: Application) -> None:
    """`rq worker shop-payments --burst`, in this process."""
    queue = Queue(PAYMENTS, connection=application.redis)
    PaymentsWorker([queue], connection=application.redis).work(burst=True, with_scheduler=False)


# --- where each payment stands -----------------------------------------------------


def test_a_charge_waits_from_its_asking_until_its_answer(
    application: Application,
    settings: Settings,
    stripe_client: stripe.StripeClient,
    order_id: str,
) -> None:
    key = charge_key(order_id, 1)
    request_payment(application, order_id, "pm_card_authenticationRequired")
    assert provider_row(application, order_id) == {
        "reference": None, "status": "requested", "call_key": key, "waiting": True,
    }  # fmt: skip

    settle(application, order_id)
    (intent,) = intents_of(stripe_client, order_id)
    assert provider_row(application, order_id) == {
        "reference": intent["id"], "status": "pending", "call_key": key, "waiting": True,
    }  # fmt: skip

    authenticate(settings, intent["id"])
    settle(application, order_id)
    assert provider_row(application, order_id) == {
        "reference": intent["id"], "status": "succeeded", "call_key": None, "waiting": False,
    }  # fmt: skip
    with application.engine.connect() as conn:
        assert tracking.order_of(conn, intent["id"]) == order_id
        assert tracking.order_of(conn, "pi_of_no_order") is None


def test_a_refund_waits_from_its_asking_until_its_answer_and_keeps_the_charge_reference(
    application: Application, order_id: str
) -> None:
    request_payment(application, order_id, "pm_card_visa")
    settle(application, order_id)
    charged = payment_events(application, order_id)[-1]
    assert isinstance(charged, PaymentSucceeded)

    application.bus.dispatch(RefundPayment(order_id, "damaged"))
    assert provider_row(application, order_id) == {
        "reference": charged.provider_reference, "status": "refunding",
        "call_key": refund_key(order_id, 1), "waiting": True,
    }  # fmt: skip

    settle(application, order_id)
    assert provider_row(application, order_id) == {
        "reference": charged.provider_reference, "status": "refunded", "call_key": None,
        "waiting": False,
    }  # fmt: skip


def test_a_failed_charge_waits_on_nothing_until_another_attempt(
    application: Application, order_id: str
) -> None:
    request_payment(application, order_id, "pm_card_visa_chargeDeclined")
    settle(application, order_id)
    row = provider_row(application, order_id)
    assert row is not None
    assert (row["status"], row["call_key"], row["waiting"]) == ("failed", None, False)

    request_payment(application, order_id, "pm_card_visa")

    row = provider_row(application, order_id)
    assert row is not None
    assert (row["status"], row["call_key"], row["waiting"]) == (
        "requested",
        charge_key(order_id, 2),
        True,
    )


def test_a_new_wait_starts_when_the_payment_moves_on(
    application: Application, order_id: str
) -> None:
    request_payment(application, order_id, "pm_card_authenticationRequired")
    backdate(application, order_id, 3600)

    settle(application, order_id)  # requested -> pending: waiting on the customer now

    with application.engine.connect() as conn:
        assert tracking.overdue(conn, older_than=60) == []
        (waiting,) = tracking.overdue(conn, older_than=0)
    assert waiting == tracking.Awaiting(order_id, "pending", charge_key(order_id, 1))


# --- reconciliation ----------------------------------------------------------------


def test_only_payments_waiting_longer_than_the_setting_get_their_call_again(
    application: Application, served: jobs.Jobs
) -> None:
    after = application.settings.reconcile_after
    overdue, recent, settled = (f"o-{new_id()}" for _ in range(3))
    for order in (overdue, recent, settled):
        request_payment(application, order, "pm_card_visa")
    settle(application, settled)
    backdate(application, overdue, after + 5)
    backdate(application, recent, after - 5)
    forget_jobs(application)

    assert jobs.reconcile_payments() == 1

    assert queued_calls(application) == [charge_key(overdue, 1)]
    job = job_of(application, charge_key(overdue, 1))
    assert job is not None
    assert (job.func_name, job.args) == ("config.jobs.settle_payment", (overdue,))
    assert job.retries_left == 8


def test_a_call_still_queued_is_not_queued_twice(
    application: Application, served: jobs.Jobs, order_id: str
) -> None:
    request_payment(application, order_id, "pm_card_visa")  # its job is queued
    backdate(application, order_id, application.settings.reconcile_after + 5)

    assert jobs.reconcile_payments() == 1
    assert jobs.reconcile_payments() == 0  # asked again just now: not for another while
    application.queues.settle_payment(order_id, charge_key(order_id, 1))

    assert queued_calls(application) == [charge_key(order_id, 1)]


def test_an_overdue_refund_gets_its_refund_call_again(
    application: Application, served: jobs.Jobs, order_id: str
) -> None:
    request_payment(application, order_id, "pm_card_visa")
    settle(application, order_id)
    application.bus.dispatch(RefundPayment(order_id, "damaged"))
    backdate(application, order_id, application.settings.reconcile_after + 5)
    forget_jobs(application)

    jobs.reconcile_payments()

    assert queued_calls(application) == [refund_key(order_id, 1)]


def test_a_reconciled_call_run_by_a_payments_worker_settles_the_payment(
    application: Application,
    served: jobs.Jobs,
    stripe_client: stripe.StripeClient,
    settings: Settings,
    order_id: str,
) -> None:
    """A 3-D Secure charge the customer completed, whose webhook never came: the
    reconciled job looks it up."""
    request_payment(application, order_id, "pm_card_authenticationRequired")
    settle(application, order_id)
    (intent,) = intents_of(stripe_client, order_id)
    authenticate(settings, intent["id"])
    backdate(application, order_id, application.settings.reconcile_after + 5)
    forget_jobs(application)

    jobs.reconcile_payments()
    run_payments_worker(application)

    assert isinstance(payment_events(application, order_id)[-1], PaymentSucceeded)
    job = job_of(application, charge_key(order_id, 1))
    assert job is not None
    assert job.get_status() == "finished"
    assert job.return_value() == "succeeded"
    row = provider_row(application, order_id)
    assert row is not None
    assert row["waiting"] is False


def test_the_sweep_has_a_payments_worker_reconcile(
    application: Application, served: jobs.Jobs, order_id: str
) -> None:
    request_payment(application, order_id, "pm_card_visa")
    backdate(application, order_id, application.settings.reconcile_after + 5)
    forget_jobs(application)

    served.sweep()

    assert queued_calls(application) == ["reconcile-payments"]
    run_payments_worker(application)  # reconciles, which queues the charge, which it runs
    assert isinstance(payment_events(application, order_id)[-1], PaymentSucceeded)


def test_payments_left_pending_do_not_starve_the_others(
    application: Application, served: jobs.Jobs, order_id: str
) -> None:
    # A hundred charges that stay pending at Stripe however often they are looked up,
    # all waiting since long before.
    with application.engine.begin() as conn:
        for n in range(100):
            abandoned = f"o-abandoned-{n}-{new_id()}"
            conn.execute(
                text(
                    "INSERT INTO provider_payments"
                    " (order_id, reference, status, call_key, awaiting_since)"
                    " VALUES (:order, :reference, 'pending', :key, now() - interval '1 day')"
                ),
                {"order": abandoned, "reference": f"pi_{n}", "key": charge_key(abandoned, 1)},
            )
    request_payment(application, order_id, "pm_card_visa")  # its job is then lost
    backdate(application, order_id, application.settings.reconcile_after + 5)
    forget_jobs(application)

    assert jobs.reconcile_payments() == 100  # a round takes those left alone longest
    assert charge_key(order_id, 1) not in queued_calls(application)
    forget_jobs(application)  # their look-ups ran: still pending

    assert jobs.reconcile_payments() == 1  # the next round: the ones not just looked up
    assert charge_key(order_id, 1) in queued_calls(application)
