"""A charge the provider made whose answer never reached the shop, abandoned at the
payment deadline: the money must still come back.

The payments worker asks Stripe for the charge and dies before it records the answer (or
its answer is lost); Stripe's webhook is lost too. The payment deadline then abandons the
payment (PaymentAbandoned: "a charge not yet made is not made"). Nothing asks Stripe
about that charge again: an abandoned payment waits on no provider call, so neither a
retried job nor reconciliation looks, and the captured money is kept for an order that
was cancelled.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

import config.jobs
from config.bootstrap import Application
from payments.domain import Payment
from payments.gateway import ChargeRequest
from sagas.order_fulfillment import NAME
from tests.integration.sagas.support import order_events, settle
from tests.support.payments import SUCCEEDS, payment_intent, settle_payments
from tests.support.polling import eventually
from tests.support.shop import Shop


def test_a_charge_made_but_unrecorded_when_the_deadline_abandons_it_is_refunded(
    jobs: None, application: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(application.saga.decide, "payment_timeout", timedelta(0))
    shop = Shop(application.bus)
    shop.add_product("MUG-1", stock=10)
    order_id = shop.place(shop.customer("ada@example.com"), {"MUG-1": 1}, SUCCEEDS).order_id

    def charge_asked() -> None:
        config.jobs.catch_up(NAME)
        assert "PaymentRequested" in order_events(application, order_id)

    eventually(charge_asked, timeout=20, interval=0.05)
    # The payments worker's call reaches Stripe, which charges the card; the worker dies
    # before it records the answer.
    with application.engine.connect() as conn:
        history = application.store.read_stream(conn, Payment.stream_for(order_id))
    payment = Payment(order_id)
    payment.replay(recorded.event for recorded in history)
    request = ChargeRequest(
        order_id, payment.attempt, payment.amount, payment.payment_method, payment.charge_key
    )
    charged = application.provider_calls.gateway.charge(request)
    assert charged.status == "succeeded" and charged.reference
    # The deadline passes with no answer recorded: the saga cancels and abandons.
    assert config.jobs.payment_deadline(order_id) is True
    settle(application)
    assert "PaymentAbandoned" in order_events(application, order_id)
    # Whatever the payments workers and reconciliation do next, as often as they like.
    for _ in range(3):
        settle_payments(application)
        config.jobs.reconcile_payments()
        settle(application)

    intent = payment_intent(application.settings, charged.reference)
    assert intent["status"] == "succeeded"  # Stripe holds the customer's money
    events = order_events(application, order_id)
    assert "PaymentRefunded" in events, f"charged at Stripe, cancelled, never refunded: {events}"
