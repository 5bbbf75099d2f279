"""The Stripe gateway against the session's local Stripe: what each call does there, and
what it reports."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import stripe

from config.settings import Settings
from kernel.money import Money
from payments.domain import charge_key, refund_key
from payments.gateway import ChargeRequest, ChargeResult, ProviderUnavailable, RefundResult
from payments.stripe_gateway import StripeGateway
from tests.integration.payments.conftest import (
    EUR_10,
    SilentServer,
    intents_of,
    refunds_of,
    unanswered,
)
from tests.support.payments import authenticate


def charging(order_id: str, payment_method: str, attempt: int = 1) -> ChargeRequest:
    return ChargeRequest(order_id, attempt, EUR_10, payment_method, charge_key(order_id, attempt))


def test_a_charge_is_one_confirmed_intent_naming_the_order_and_attempt(
    gateway: StripeGateway, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    result = gateway.charge(charging(order_id, "pm_card_visa", attempt=2))

    (intent,) = intents_of(stripe_client, order_id)
    assert result == ChargeResult.succeeded(intent["id"], 1000)
    assert (intent["status"], intent["amount"], intent["currency"]) == ("succeeded", 1000, "eur")
    assert intent["amount_received"] == 1000
    assert intent["metadata"] == {"order_id": order_id, "attempt": "2"}


def test_a_charge_in_another_currency_is_asked_in_that_currency(
    gateway: StripeGateway, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    gbp = Money(1999, "GBP")
    key = charge_key(order_id, 1)

    result = gateway.charge(ChargeRequest(order_id, 1, gbp, "pm_card_visa", key))

    (intent,) = intents_of(stripe_client, order_id)
    assert (intent["amount"], intent["currency"]) == (1999, "gbp")
    assert result.captured == 1999


@pytest.mark.parametrize(
    ("payment_method", "reason"),
    [
        ("pm_card_visa_chargeDeclined", "generic_decline"),
        ("pm_card_visa_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ],
)
def test_a_declined_card_fails_with_the_decline_code(
    gateway: StripeGateway,
    stripe_client: stripe.StripeClient,
    order_id: str,
    payment_method: str,
    reason: str,
) -> None:
    result = gateway.charge(charging(order_id, payment_method))

    (intent,) = intents_of(stripe_client, order_id)
    assert result == ChargeResult.failed(reason, intent["id"])
    assert intent["status"] == "requires_payment_method"
    assert intent["amount_received"] == 0


@pytest.mark.parametrize("payment_method", ["pm_no_such_method", "tok_visa", ""])
def test_an_unusable_payment_method_fails_before_any_charge(
    gateway: StripeGateway,
    stripe_client: stripe.StripeClient,
    order_id: str,
    payment_method: str,
) -> None:
    result = gateway.charge(charging(order_id, payment_method))

    assert result.status == "failed"
    assert result.reason
    assert (result.reference, result.captured) == (None, None)
    assert intents_of(stripe_client, order_id) == []


def test_a_card_needing_3d_secure_is_pending_until_the_customer_authenticates(
    gateway: StripeGateway, stripe_client: stripe.StripeClient, settings: Settings, order_id: str
) -> None:
    result = gateway.charge(charging(order_id, "pm_card_authenticationRequired"))

    (intent,) = intents_of(stripe_client, order_id)
    assert result == ChargeResult.pending(intent["id"])
    assert intent["status"] == "requires_action"
    assert gateway.charge_status(intent["id"]) == ChargeResult.pending(intent["id"])

    authenticate(settings, intent["id"])

    assert gateway.charge_status(intent["id"]) == ChargeResult.succeeded(intent["id"], 1000)


def test_a_failed_authentication_fails_the_charge(
    gateway: StripeGateway, settings: Settings, order_id: str
) -> None:
    pending = gateway.charge(charging(order_id, "pm_card_authenticationRequired"))
    assert pending.reference is not None

    authenticate(settings, pending.reference, success=False)

    assert gateway.charge_status(pending.reference) == ChargeResult.failed(
        "payment_intent_authentication_failure", pending.reference
    )


@pytest.mark.parametrize(
    "payment_method",
    ["pm_card_visa", "pm_card_visa_chargeDeclined", "pm_card_authenticationRequired"],
)
def test_a_charge_asked_again_with_its_key_is_the_same_charge(
    gateway: StripeGateway,
    stripe_client: stripe.StripeClient,
    order_id: str,
    payment_method: str,
) -> None:
    first = gateway.charge(charging(order_id, payment_method))
    again = gateway.charge(charging(order_id, payment_method))

    assert again == first
    (intent,) = intents_of(stripe_client, order_id)
    assert intent["id"] == first.reference


def test_a_key_reused_with_other_parameters_is_a_bug_not_a_retry(
    gateway: StripeGateway, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    first = gateway.charge(charging(order_id, "pm_card_visa"))
    other_amount = ChargeRequest(
        order_id, 1, Money(2000, "EUR"), "pm_card_visa", charge_key(order_id, 1)
    )

    with pytest.raises(stripe.IdempotencyError):
        gateway.charge(other_amount)

    assert [intent["id"] for intent in intents_of(stripe_client, order_id)] == [first.reference]


def test_another_attempt_is_another_charge(
    gateway: StripeGateway, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    declined = gateway.charge(charging(order_id, "pm_card_visa_chargeDeclined", attempt=1))
    paid = gateway.charge(charging(order_id, "pm_card_visa", attempt=2))

    assert (declined.status, paid.status) == ("failed", "succeeded")
    intents = intents_of(stripe_client, order_id)
    assert sorted(intent["metadata"]["attempt"] for intent in intents) == ["1", "2"]


def charged(gateway: StripeGateway, order_id: str) -> str:
    result = gateway.charge(charging(order_id, "pm_card_visa"))
    assert result.status == "succeeded" and result.reference is not None
    return result.reference


def test_a_refund_gives_back_the_amount_asked(
    gateway: StripeGateway, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    intent_id = charged(gateway, order_id)

    result = gateway.refund(order_id, intent_id, EUR_10, refund_key(order_id, 1))

    (refund,) = refunds_of(stripe_client, intent_id)
    assert result == RefundResult.succeeded(refund["id"])
    assert (refund["amount"], refund["status"]) == (1000, "succeeded")
    assert refund["metadata"] == {"order_id": order_id, "refund_key": refund_key(order_id, 1)}
    charge = stripe_client.v1.charges.retrieve(
        stripe_client.v1.payment_intents.retrieve(intent_id).latest_charge  # type: ignore[arg-type]
    )
    assert (charge.amount_refunded, charge.refunded) == (1000, True)


def test_a_refund_asked_again_with_its_key_refunds_once(
    gateway: StripeGateway, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    intent_id = charged(gateway, order_id)
    key = refund_key(order_id, 1)

    first = gateway.refund(order_id, intent_id, EUR_10, key)
    again = gateway.refund(order_id, intent_id, EUR_10, key)

    assert again == first
    assert [refund["id"] for refund in refunds_of(stripe_client, intent_id)] == [first.reference]


def test_a_charge_refunded_already_answers_with_that_refund(
    gateway: StripeGateway, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    intent_id = charged(gateway, order_id)
    at_the_dashboard = stripe_client.v1.refunds.create(params={"payment_intent": intent_id})

    result = gateway.refund(order_id, intent_id, EUR_10, refund_key(order_id, 1))

    assert result == RefundResult.succeeded(at_the_dashboard.id, whole_charge=True)
    assert len(refunds_of(stripe_client, intent_id)) == 1


def test_a_refund_of_more_than_was_charged_is_refused(
    gateway: StripeGateway, stripe_client: stripe.StripeClient, order_id: str
) -> None:
    intent_id = charged(gateway, order_id)

    result = gateway.refund(order_id, intent_id, Money(1001, "EUR"), refund_key(order_id, 1))

    assert result.status == "failed"
    assert result.reason
    assert refunds_of(stripe_client, intent_id) == []


# --- a provider that cannot be asked, or does not answer ----------------------------


Call = Callable[[StripeGateway, str], object]
CALLS: dict[str, Call] = {
    "charge": lambda gateway, order: gateway.charge(charging(order, "pm_card_visa")),
    "charge_status": lambda gateway, order: gateway.charge_status("pi_123"),
    "refund": lambda gateway, order: gateway.refund(order, "pi_123", EUR_10, f"refund-{order}"),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_provider_refusing_connections_is_unavailable_at_once(
    settings: Settings,
    stripe_client: stripe.StripeClient,
    closed_port: int,
    order_id: str,
    call: Call,
) -> None:
    gateway = unanswered(f"http://127.0.0.1:{closed_port}", settings)
    started = time.monotonic()

    with pytest.raises(ProviderUnavailable):
        call(gateway, order_id)

    assert time.monotonic() - started < 1
    assert intents_of(stripe_client, order_id) == []


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_provider_that_never_answers_is_unavailable_after_one_try_of_the_read_timeout(
    settings: Settings, silent_server: SilentServer, order_id: str, call: Call
) -> None:
    gateway = unanswered(f"http://127.0.0.1:{silent_server.port}", settings)
    started = time.monotonic()

    with pytest.raises(ProviderUnavailable, match=r"(?i)timed out"):
        call(gateway, order_id)

    assert 0.2 <= time.monotonic() - started < 2
    assert silent_server.connections == 1  # the SDK retries nothing: the job's retries do
