"""Stripe's webhook events: verifying them, and what each one asks of the payments context.

A notification is verified over its raw body by the SDK's signature check (the
`Stripe-Signature` header: a timestamp and HMAC-SHA256 signatures over "<t>.<body>", within
a tolerance of now), and only then parsed. Three event types become commands:

    payment_intent.succeeded       -> RecordChargeOutcome(succeeded)
    payment_intent.payment_failed  -> RecordChargeOutcome(failed, the decline code)
    charge.refunded                -> RecordRefundOutcome(succeeded), of the refund
                                      the shop asked for (its newest refund's metadata
                                      names it), or of the whole charge once it is
                                      refunded in full (a refund made at the dashboard)

Every other type is acknowledged and left alone. The PaymentIntent's metadata names the
order and the attempt (the gateway puts them there); a charge's order is found by its
PaymentIntent (payments.tracking).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from json import JSONDecodeError
from typing import Any

import marshmallow as ma
import stripe
from marshmallow import validate

from kernel.http import loads_json
from kernel.messages import Command
from payments.commands import RecordChargeOutcome, RecordRefundOutcome
from payments.domain import refund_attempt
from payments.stripe_gateway import payment_error_reason

SIGNATURE_HEADER = "Stripe-Signature"
HANDLED = ("payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded")


class BadWebhook(Exception):
    """The notification is not provably from the provider, not recent enough, or not an
    event at all."""


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    id: str
    type: str
    object: Mapping[str, Any]  # data.object: the PaymentIntent, Charge, ... it is about


@dataclass(frozen=True, slots=True)
class Ignored:
    """Why an event asks nothing of the shop (machine-readable, and for people)."""

    reason: str
    detail: str


class _Data(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE

    object = ma.fields.Dict(required=True)


class EventSchema(ma.Schema):
    """The envelope of a Stripe event; the provider adds fields freely (kept in the inbox)."""

    class Meta:
        unknown = ma.EXCLUDE

    id = ma.fields.String(required=True, validate=validate.Length(min=1, max=255))
    type = ma.fields.String(required=True, validate=validate.Length(min=1, max=255))
    data = ma.fields.Nested(_Data, required=True)


def verified_event(
    body: bytes, header: str | None, secret: str, tolerance: int
) -> tuple[ProviderEvent, Any]:
    """The event `body` carries, and the body parsed, once `header` proves that the
    provider sent it within `tolerance` seconds; raises BadWebhook otherwise."""
    try:
        text = body.decode()
        stripe.WebhookSignature.verify_header(text, header or "", secret, tolerance)
    except UnicodeDecodeError:
        raise BadWebhook("the body is not UTF-8") from None
    except stripe.SignatureVerificationError as error:
        raise BadWebhook(f"the {SIGNATURE_HEADER} signature does not verify: {error}") from None
    try:
        payload = loads_json(body)
        fields = EventSchema().load(payload)
    except JSONDecodeError as error:
        raise BadWebhook(f"the body is not acceptable JSON: {error.msg}") from None
    except ma.ValidationError as error:
        raise BadWebhook(f"the body is not a Stripe event: {error.messages}") from None
    return ProviderEvent(fields["id"], fields["type"], fields["data"]["object"]), payload


def command_for(event: ProviderEvent, order_of: Callable[[str], str | None]) -> Command | Ignored:
    """What `event` asks of the payments context; `order_of` finds the order of a
    PaymentIntent id."""
    if event.type not in HANDLED:
        return Ignored("unhandled_event_type", f"{event.type} events change nothing here")
    about = event.object
    if event.type == "charge.refunded":
        return _refunded(event, about, order_of)
    metadata = about.get("metadata") or {}
    order_id, attempt = metadata.get("order_id"), metadata.get("attempt")
    if not isinstance(order_id, str) or not str(attempt or "").isdigit():
        return Ignored("not_an_order_payment", "the PaymentIntent names no order and attempt")
    if event.type == "payment_intent.succeeded":
        received = about.get("amount_received")
        return RecordChargeOutcome(
            order_id,
            int(str(attempt)),
            "succeeded",
            str(about.get("id")),
            amount_captured=received if isinstance(received, int) else None,
            provider_event_id=event.id,
        )
    return RecordChargeOutcome(
        order_id,
        int(str(attempt)),
        "failed",
        str(about.get("id")),
        payment_error_reason(about.get("last_payment_error")),
        provider_event_id=event.id,
    )


def _refunded(
    event: ProviderEvent, charge: Mapping[str, Any], order_of: Callable[[str], str | None]
) -> Command | Ignored:
    intent = charge.get("payment_intent")
    order_id = order_of(intent) if isinstance(intent, str) else None
    if order_id is None:
        return Ignored("not_an_order_payment", "the charge belongs to no order's payment")
    whole = bool(charge.get("refunded"))
    refunds = [
        refund for refund in (charge.get("refunds") or {}).get("data") or ()
        if isinstance(refund, dict)
    ]  # fmt: skip
    ours = _latest_asked(refunds)
    if ours is None and not whole:
        return Ignored("partial_refund", "a partial refund the shop did not ask for")
    attempt, reference = ours or (None, refunds[0].get("id") if refunds else None)
    return RecordRefundOutcome(
        order_id,
        "succeeded",
        str(reference or charge.get("id")),
        provider_event_id=event.id,
        attempt=attempt,
        whole_charge=whole,
    )


def _latest_asked(refunds: Sequence[Mapping[str, Any]]) -> tuple[int, Any] | None:
    """The attempt and id of the latest refund the shop asked for among `refunds` (its
    idempotency key is in the refund's metadata). The shop has one refund at a time with
    the provider, so the latest asked is the one the event can be news about; the order
    the provider lists refunds in does not matter."""
    asked = []
    for refund in refunds:
        key = (refund.get("metadata") or {}).get("refund_key")
        attempt = refund_attempt(key) if isinstance(key, str) else None
        if attempt is not None:
            asked.append((attempt, refund.get("id")))
    return max(asked, key=lambda found: found[0], default=None)
