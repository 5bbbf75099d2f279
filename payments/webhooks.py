"""The payment provider's webhook format: HMAC signatures and the notification body.

A notification is signed over its raw body: the `Payment-Signature` header reads
`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, b"<t>." + body)>`. Binding the
timestamp into the MAC lets the receiver refuse replays outside a tolerance window.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import marshmallow as ma
from marshmallow import validate

SIGNATURE_HEADER = "Payment-Signature"
PROVIDER_ACTOR = "payment-provider"
OUTCOMES = ("succeeded", "failed")
EVENT_TYPES = tuple(f"payment.{outcome}" for outcome in OUTCOMES)

# Fixed forever: a provider event id must always map to the same command id.
_COMMAND_IDS = uuid.UUID("5b0e7d3c-2f4a-5e61-9c8d-7a1b2c3d4e5f")
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


class BadSignature(Exception):
    """The notification is not provably from the provider, or not recent enough."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `Payment-Signature` header value for `body` sent at `timestamp`."""
    return f"t={timestamp},v1={_mac(secret, body, timestamp)}"


def verify(secret: str, body: bytes, header: str | None, now: float, tolerance: int) -> None:
    """Check that `header` signs `body` with `secret` within `tolerance` seconds of `now`.

    Raises BadSignature when the header is missing or malformed, when no `v1` MAC
    matches (several are accepted, so the provider can roll its secret), or when the
    signed timestamp is more than `tolerance` seconds in the past or the future.
    """
    if not header:
        raise BadSignature(f"the {SIGNATURE_HEADER} header is missing")
    timestamp, macs = _parse(header)
    expected = _mac(secret, body, timestamp)
    # Every candidate is compared, so the time taken does not say which one matched.
    matches = [hmac.compare_digest(expected, mac) for mac in macs]
    if not any(matches):
        raise BadSignature("the signature does not match the body")
    if abs(now - timestamp) > tolerance:
        raise BadSignature(f"the signature's timestamp is more than {tolerance}s away from now")


def _mac(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _parse(header: str) -> tuple[int, list[str]]:
    timestamps: list[str] = []
    macs: list[str] = []
    for part in header.split(","):
        key, separator, value = part.strip().partition("=")
        if not separator:
            raise BadSignature(f"the {SIGNATURE_HEADER} header is malformed")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            macs.append(value)
    if len(timestamps) != 1 or not _UNIX_SECONDS.fullmatch(timestamps[0]):
        raise BadSignature(f"the {SIGNATURE_HEADER} header needs one t=<unix seconds>")
    if not macs:
        raise BadSignature(f"the {SIGNATURE_HEADER} header has no v1 signature")
    return int(timestamps[0]), macs


@dataclass(frozen=True, slots=True)
class PaymentNotification:
    """The provider's final answer to a pending charge."""

    provider_event_id: str
    order_id: str
    outcome: Literal["succeeded", "failed"]
    reason: str | None = None

    @property
    def command_id(self) -> str:
        """The id of the CompletePayment this notification causes; the same on every delivery."""
        return str(uuid.uuid5(_COMMAND_IDS, self.provider_event_id))


class PaymentNotificationDataSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # the provider may add fields; they are kept in the inbox

    order_id = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "The order whose pending payment this completes"},
    )
    reason = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=500),
        metadata={"description": "Why the payment failed (payment.failed only)"},
    )


class PaymentNotificationSchema(ma.Schema):
    """A notification as the provider sends it; loads into a PaymentNotification."""

    class Meta:
        unknown = ma.EXCLUDE

    id = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=255),
        metadata={"description": "The provider's event id; a redelivery repeats it"},
    )
    type = ma.fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    data = ma.fields.Nested(PaymentNotificationDataSchema, required=True)
    created = ma.fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0),
        metadata={"description": "When the provider created the event, in Unix seconds"},
    )

    @ma.post_load
    def to_notification(self, data: dict[str, Any], **_: Any) -> PaymentNotification:
        outcome: Literal["succeeded", "failed"] = (
            "succeeded" if data["type"] == "payment.succeeded" else "failed"
        )
        return PaymentNotification(
            data["id"], data["data"]["order_id"], outcome, data["data"]["reason"]
        )


def simulated_notification(
    order_id: str,
    outcome: str = "succeeded",
    reason: str | None = None,
    provider_event_id: str | None = None,
) -> bytes:
    """The JSON body the simulated provider sends for a completed charge."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    body = {
        "id": provider_event_id or f"evt_{secrets.token_hex(12)}",
        "type": f"payment.{outcome}",
        "data": {"order_id": order_id, "reason": reason},
        "created": int(time.time()),
    }
    return json.dumps(body, separators=(",", ":")).encode()
