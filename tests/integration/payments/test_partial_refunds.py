"""Partial refunds through the bus, made by the payments worker's job at the session's
local Stripe: each refund for exactly its amount, under its own idempotency key, never
beyond what was captured; one asked while another is with the provider waits its turn;
Stripe's webhook settles the refund it names."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from flask.testing import FlaskClient

from config.adapters import PaymentsLedger
from config.bootstrap import Application
from config.settings import Settings
from kernel.messages import Metadata
from kernel.money import Money
from kernel.results import Failure, Success
from kernel.unit_of_work import UnitOfWork
from payments.commands import RefundPayment
from payments.domain import refund_attempt, refund_key
from payments.events import PaymentRefunded, RefundQueued, RefundRequested
from payments.stripe_gateway import StripeGateway
from tests.integration.payments.conftest import (
    EUR_10,
    paid,
    payment_events,
    post_webhook,
    provider_row,
    queued_calls,
    refunds_of,
    settle,
)
from tests.support.payments import stripe_event, stripe_signature

EUR_3 = Money(300, "EUR")
EUR_4 = Money(400, "EUR")


def refund(
    application: Application, order_id: str, amount: Money | None, refund_id: str = ""
) -> None:
    result = application.bus.dispatch(RefundPayment(order_id, "returned", amount, refund_id))
    assert isinstance(result, Success), result


def refunded(application: Application, order_id: str) -> bool:
    """What the orders context is told: is the order's money (being) given back in full?"""
    with application.engine.begin() as conn:
        return PaymentsLedger().refunded(UnitOfWork(conn, application.store, Metadata()), order_id)


def asked_refunds(stripe_client: stripe.StripeClient, intent_id: str) -> list[dict[str, Any]]:
    """The intent's refunds at the provider, in the order the shop asked for them (by the
    attempt in their idempotency key: several are made within one second)."""
    made = refunds_of(stripe_client, intent_id)
    return sorted(made, key=lambda refund: refund_attempt(refund["metadata"]["refund_key"]) or 0)


def amounts_refunded(stripe_client: stripe.StripeClient, intent_id: str) -> list[int]:
    return [refund["amount"] for refund in asked_refunds(stripe_client, intent_id)]


def test_two_partial_refunds_then_the_rest_give_back_exactly_what_was_captured(
    application: Application, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    intent = paid(application, order_id).provider_reference

    refund(application, order_id, EUR_3, "ret-1")
    assert settle(application, order_id) == "succeeded"
    refund(application, order_id, EUR_4, "ret-2")
    assert settle(application, order_id) == "succeeded"
    assert not refunded(application, order_id)  # returned lines: the rest may still ship
    refund(application, order_id, None)
    assert refunded(application, order_id)
    assert settle(application, order_id) == "succeeded"

    assert amounts_refunded(stripe_client, intent) == [300, 400, 300]
    settled = payment_events(application, order_id)[2:]
    assert [(type(event).__name__, event.amount.amount) for event in settled] == [  # type: ignore[attr-defined]
        ("RefundRequested", 300),
        ("PaymentRefunded", 300),
        ("RefundRequested", 400),
        ("PaymentRefunded", 400),
        ("RefundRequested", 300),
        ("PaymentRefunded", 300),
    ]
    last = settled[-1]
    assert isinstance(last, PaymentRefunded)
    assert (last.fully_refunded, last.refunded_total) == (True, EUR_10)
    assert refunded(application, order_id)
    assert settle(application, order_id) == "nothing due: refunded"


def test_a_refund_id_asked_for_again_refunds_once(
    application: Application, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    intent = paid(application, order_id).provider_reference

    refund(application, order_id, EUR_3, "ret-1")
    refund(application, order_id, EUR_3, "ret-1")  # before it is made
    assert settle(application, order_id) == "succeeded"
    before = payment_events(application, order_id)
    refund(application, order_id, EUR_3, "ret-1")  # after

    assert payment_events(application, order_id) == before
    assert settle(application, order_id) == "nothing due: succeeded"
    assert amounts_refunded(stripe_client, intent) == [300]
    assert not refunded(application, order_id)


def test_refunding_more_than_is_left_is_refused_and_records_nothing(
    application: Application, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    intent = paid(application, order_id).provider_reference
    refund(application, order_id, Money(800, "EUR"), "ret-1")
    before = payment_events(application, order_id)

    result = application.bus.dispatch(
        RefundPayment(order_id, "returned", Money(201, "EUR"), "ret-2")
    )

    assert isinstance(result, Failure)
    assert result.code == "refund_exceeds_payment"
    assert payment_events(application, order_id) == before
    assert settle(application, order_id) == "succeeded"
    assert amounts_refunded(stripe_client, intent) == [800]


def test_a_refund_asked_while_one_is_in_flight_is_made_once_that_one_is_settled(
    application: Application, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    intent = paid(application, order_id).provider_reference
    refund(application, order_id, EUR_3, "ret-1")

    refund(application, order_id, EUR_4, "ret-2")

    assert payment_events(application, order_id)[-1] == RefundQueued(
        order_id, "ret-2", EUR_4, "returned"
    )
    assert queued_calls(application)[-1] == refund_key(order_id, 1)
    assert amounts_refunded(stripe_client, intent) == []

    assert settle(application, order_id) == "succeeded"  # ret-1; ret-2 is asked for

    assert payment_events(application, order_id)[-1] == RefundRequested(
        order_id, EUR_4, "returned", 2, "ret-2"
    )
    assert queued_calls(application)[-1] == refund_key(order_id, 2)
    row = provider_row(application, order_id)
    assert row is not None
    assert (row["status"], row["call_key"]) == ("refunding", refund_key(order_id, 2))
    assert settle(application, order_id) == "succeeded"
    assert amounts_refunded(stripe_client, intent) == [300, 400]
    assert [event.refund_id for event in payment_events(application, order_id)[-3:]] == [  # type: ignore[attr-defined]
        "ret-1",
        "ret-2",
        "ret-2",
    ]


# --- Stripe's webhook --------------------------------------------------------------


@pytest.fixture
def secret(settings: Settings) -> str:
    assert settings.stripe_webhook_secret is not None
    return settings.stripe_webhook_secret


def deliver(client: FlaskClient, body: bytes, secret: str) -> dict[str, Any]:
    response = post_webhook(client, body, stripe_signature(secret, body, None))
    assert response.status_code == 200, response.get_json()
    receipt: dict[str, Any] = response.get_json()
    return receipt


def charge_of(stripe_client: stripe.StripeClient, intent_id: str) -> dict[str, Any]:
    latest = stripe_client.v1.payment_intents.retrieve(intent_id).latest_charge
    assert isinstance(latest, str)
    return stripe_client.v1.charges.retrieve(latest).to_dict()


def test_the_webhook_settles_the_partial_refund_it_names_and_a_repeat_changes_nothing(
    client: FlaskClient,
    application: Application,
    gateway: StripeGateway,
    stripe_client: stripe.StripeClient,
    secret: str,
    order_id: str,
) -> None:
    intent = paid(application, order_id).provider_reference
    refund(application, order_id, EUR_3, "ret-1")
    refund(application, order_id, EUR_4, "ret-2")  # queued behind ret-1
    # The job makes ret-1 at the provider, and its answer is lost: the webhook is first.
    made = gateway.refund(order_id, intent, EUR_3, refund_key(order_id, 1))
    charge = charge_of(stripe_client, intent)
    assert (charge["refunded"], charge["amount_refunded"]) == (False, 300)

    first = deliver(client, stripe_event("charge.refunded", charge, "evt_r1"), secret)
    again = deliver(client, stripe_event("charge.refunded", charge, "evt_r2"), secret)

    assert (first["status"], again["status"]) == ("accepted", "accepted")
    assert payment_events(application, order_id)[-2:] == [
        PaymentRefunded(order_id, EUR_3, "returned", str(made.reference), "ret-1", False, EUR_3),
        RefundRequested(order_id, EUR_4, "returned", 2, "ret-2"),
    ]
    assert settle(application, order_id) == "succeeded"  # ret-2, made once
    assert amounts_refunded(stripe_client, intent) == [300, 400]
    charge = charge_of(stripe_client, intent)
    late = deliver(client, stripe_event("charge.refunded", charge, "evt_r3"), secret)
    assert late["status"] == "accepted"
    second = asked_refunds(stripe_client, intent)[1]["id"]
    assert payment_events(application, order_id)[-1] == PaymentRefunded(
        order_id, EUR_4, "returned", second, "ret-2", False, Money(700, "EUR")
    )
