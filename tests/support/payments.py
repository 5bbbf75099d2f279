"""The payment provider's side, for the tests: the payments workers' part played
in-process (`settle_payments`), the customer completing 3-D Secure at the session's local
Stripe (`authenticate`), and Stripe's signed webhook events (`stripe_event`,
`signed_headers`).

Test payment methods (Stripe's documented ones, which the local Stripe knows):
`pm_card_visa` succeeds, `pm_card_visa_chargeDeclined` is declined (generic_decline),
`pm_card_visa_chargeDeclinedInsufficientFunds` too (insufficient_funds),
`pm_card_authenticationRequired` waits on 3-D Secure (pending until someone
authenticates: with nobody doing so, the payment deadline compensates), and an unknown
id such as `pm_bogus` fails before any charge is made.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from typing import Any

import stripe
from sqlalchemy import Engine, text

from config.bootstrap import Application
from config.settings import Settings
from payments import tracking

SUCCEEDS = "pm_card_visa"
DECLINED = "pm_card_visa_chargeDeclined"
INSUFFICIENT_FUNDS = "pm_card_visa_chargeDeclinedInsufficientFunds"
AUTHENTICATION_REQUIRED = "pm_card_authenticationRequired"  # pending: 3-D Secure
UNKNOWN_METHOD = "pm_bogus"
WEBHOOK_PATH = "/webhooks/stripe"
SIGNATURE_HEADER = "Stripe-Signature"


def settle_payments(application: Application) -> list[str]:
    """Make the provider call of every payment waiting on one; what each recorded."""
    with application.engine.connect() as conn:
        waiting = tracking.overdue(conn, older_than=0, limit=10_000)
    return [application.provider_calls.settle(payment.order_id) for payment in waiting]


def provider_calls_due(engine: Engine) -> list[tuple[str, str]]:
    """(order, status) of every payment with a provider call still to make: a charge,
    refund or cancellation asked for, or an abandoned charge's key still to be fenced (a
    charge pending on 3-D Secure is not one: it waits on the customer)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT order_id, status FROM provider_payments"
                " WHERE status IN ('requested', 'refunding', 'cancelling', 'abandoned')"
                " ORDER BY awaiting_since"
            )
        ).all()
    return [(order_id, status) for order_id, status in rows]


# --- the local Stripe, as the customer and the dashboard see it -----------------------


def stripe_client(settings: Settings) -> stripe.StripeClient:
    """The official SDK's client on the settings' Stripe (the session's local one)."""
    api_key, _ = settings.require_stripe()
    if settings.stripe_api_base:
        return stripe.StripeClient(
            api_key, base_addresses={"api": settings.stripe_api_base}, max_network_retries=0
        )
    return stripe.StripeClient(api_key, max_network_retries=0)


def payment_intent(settings: Settings, intent_id: str) -> dict[str, Any]:
    """The PaymentIntent as the provider holds it (Stripe's JSON)."""
    found: dict[str, Any] = stripe_client(settings).v1.payment_intents.retrieve(intent_id).to_dict()
    return found


def pending_charge(engine: Engine, order_id: str) -> str:
    """The PaymentIntent of the order's pending charge (its PaymentPending's reference)."""
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT data ->> 'provider_reference' FROM events WHERE type = 'PaymentPending'"
                " AND data ->> 'order_id' = :id ORDER BY transaction_id DESC, position DESC"
            ),
            {"id": order_id},
        ).first()
    assert found is not None, f"order {order_id} has no pending payment"
    return str(found[0])


def authenticate(settings: Settings, intent_id: str, *, success: bool = True) -> dict[str, Any]:
    """The customer completes (or fails) 3-D Secure for the PaymentIntent at the local
    Stripe, as Stripe.js would with the intent's client secret; returns the intent as
    it stands afterwards. The shop learns of it by its webhook or by a look-up."""
    secret = stripe_client(settings).v1.payment_intents.retrieve(intent_id).client_secret
    form = {"client_secret": secret, "success": "true" if success else "false", "key": "pk_test_x"}
    request = urllib.request.Request(
        f"{settings.stripe_api_base}/v1/payment_intents/{intent_id}/_authenticate",
        data=urllib.parse.urlencode(form).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


# --- Stripe's webhook events ---------------------------------------------------------


def stripe_signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header Stripe sends with `body`: `t=<ts>,v1=<hex HMAC-SHA256
    of "<ts>.<body>" keyed with the webhook signing secret>`."""
    at = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def signed_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers of a webhook delivery of `body`, signed with `secret`."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: stripe_signature(secret, body, timestamp),
    }


def stripe_event(event_type: str, about: Mapping[str, Any], event_id: str | None = None) -> bytes:
    """The body of a Stripe event of `event_type` about the object `about` (data.object)."""
    event = {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "type": event_type,
        "data": {"object": dict(about)},
    }
    return json.dumps(event).encode()


def succeeded_intent(
    intent_id: str, order_id: str, amount: int, attempt: int = 1, currency: str = "eur"
) -> dict[str, Any]:
    """A succeeded PaymentIntent of an order's charge, as the shop's gateway makes them
    (the order and the attempt in its metadata)."""
    return {
        "id": intent_id,
        "object": "payment_intent",
        "status": "succeeded",
        "amount": amount,
        "amount_received": amount,
        "currency": currency,
        "metadata": {"order_id": order_id, "attempt": str(attempt)},
    }
