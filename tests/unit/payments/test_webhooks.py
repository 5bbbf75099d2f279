"""Stripe's webhook events: what each one asks of the payments context, and which
notifications are believed at all."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import pytest

from payments.commands import RecordChargeOutcome, RecordRefundOutcome
from payments.webhooks import BadWebhook, Ignored, ProviderEvent, command_for, verified_event

ORDERS = {"pi_1": "o-1"}
SECRET = "whsec_unit"
TOLERANCE = 300

AUTHENTICATION_FAILURE = "payment_intent_authentication_failure"


def order_of(intent: str) -> str | None:
    return ORDERS.get(intent)


def intent(**fields: Any) -> dict[str, Any]:
    """A PaymentIntent as Stripe's JSON has it, paying order o-1's first attempt."""
    return {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 1000,
        "currency": "eur",
        "metadata": {"order_id": "o-1", "attempt": "1"},
        **fields,
    }


def charge(**fields: Any) -> dict[str, Any]:
    """A Charge of PaymentIntent pi_1, refunded in full by refund re_1."""
    return {
        "id": "ch_1",
        "object": "charge",
        "amount": 1000,
        "amount_refunded": 1000,
        "payment_intent": "pi_1",
        "refunded": True,
        "refunds": {"object": "list", "data": [{"id": "re_1", "amount": 1000}]},
        **fields,
    }


def event(type_: str, about: Mapping[str, Any], event_id: str = "evt_1") -> ProviderEvent:
    return ProviderEvent(event_id, type_, about)


# --- what an event asks ------------------------------------------------------------


def test_a_succeeded_intent_records_its_charge_with_what_was_received() -> None:
    succeeded = intent(status="succeeded", amount_received=900)

    command = command_for(event("payment_intent.succeeded", succeeded), order_of)

    assert command == RecordChargeOutcome(
        "o-1", 1, "succeeded", "pi_1", amount_captured=900, provider_event_id="evt_1"
    )


@pytest.mark.parametrize("received", [None, "900", 9.5])
def test_a_succeeded_intent_without_an_integer_amount_received_says_nothing_of_it(
    received: object,
) -> None:
    succeeded = intent(status="succeeded", amount_received=received)

    command = command_for(event("payment_intent.succeeded", succeeded), order_of)

    assert isinstance(command, RecordChargeOutcome)
    assert command.amount_captured is None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ({"code": "card_declined", "decline_code": "insufficient_funds"}, "insufficient_funds"),
        ({"code": "payment_intent_authentication_failure"}, AUTHENTICATION_FAILURE),
        ({"message": "no code at all"}, "unspecified"),
        (None, "unspecified"),
    ],
)
def test_a_failed_intent_records_the_most_precise_reason_given(
    error: dict[str, str] | None, reason: str
) -> None:
    failed = intent(status="requires_payment_method", last_payment_error=error)

    command = command_for(event("payment_intent.payment_failed", failed, "evt_2"), order_of)

    assert command == RecordChargeOutcome(
        "o-1", 1, "failed", "pi_1", reason, provider_event_id="evt_2"
    )


def test_the_attempt_in_the_metadata_is_the_attempt_answered() -> None:
    second = intent(status="succeeded", metadata={"order_id": "o-1", "attempt": "2"})

    command = command_for(event("payment_intent.succeeded", second), order_of)

    assert isinstance(command, RecordChargeOutcome)
    assert command.attempt == 2


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        None,
        {"order_id": "o-1"},
        {"attempt": "1"},
        {"order_id": "o-1", "attempt": "first"},
        {"order_id": "o-1", "attempt": "-1"},
        {"order_id": 7, "attempt": "1"},
    ],
)
@pytest.mark.parametrize("type_", ["payment_intent.succeeded", "payment_intent.payment_failed"])
def test_an_intent_that_pays_no_order_is_ignored(
    metadata: dict[str, Any] | None, type_: str
) -> None:
    foreign = intent(status="succeeded", metadata=metadata)

    command = command_for(event(type_, foreign), order_of)

    assert isinstance(command, Ignored)
    assert command.reason == "not_an_order_payment"


def test_a_charge_refunded_in_full_records_the_refund_of_its_intents_order() -> None:
    asked: list[str] = []

    def finding(reference: str) -> str | None:
        asked.append(reference)
        return order_of(reference)

    command = command_for(event("charge.refunded", charge(), "evt_3"), finding)

    assert command == RecordRefundOutcome(
        "o-1", "succeeded", "re_1", provider_event_id="evt_3", whole_charge=True
    )
    assert asked == ["pi_1"]


@pytest.mark.parametrize("refunds", [None, {}, {"data": []}, {"data": ["re_1"]}])
def test_without_the_refund_itself_the_charge_is_the_reference(refunds: object) -> None:
    command = command_for(event("charge.refunded", charge(refunds=refunds)), order_of)

    assert command == RecordRefundOutcome(
        "o-1", "succeeded", "ch_1", provider_event_id="evt_1", whole_charge=True
    )


def test_a_partial_refund_the_shop_asked_for_names_its_attempt() -> None:
    ours = {"id": "re_2", "metadata": {"order_id": "o-1", "refund_key": "payment-o-1-refund-2"}}
    older = {"id": "re_1", "metadata": {"order_id": "o-1", "refund_key": "payment-o-1-refund-1"}}
    partial = charge(amount_refunded=400, refunded=False, refunds={"data": [ours, older]})

    command = command_for(event("charge.refunded", partial, "evt_4"), order_of)

    assert command == RecordRefundOutcome(
        "o-1", "succeeded", "re_2", provider_event_id="evt_4", attempt=2
    )


def test_a_partial_refund_nobody_asked_for_is_ignored() -> None:
    partial = charge(amount_refunded=400, refunded=False)

    command = command_for(event("charge.refunded", partial), order_of)

    assert isinstance(command, Ignored)
    assert command.reason == "partial_refund"


@pytest.mark.parametrize("payment_intent", ["pi_elsewhere", None, 42])
def test_a_refunded_charge_of_no_orders_payment_is_ignored(payment_intent: object) -> None:
    foreign = charge(payment_intent=payment_intent)

    command = command_for(event("charge.refunded", foreign), order_of)

    assert isinstance(command, Ignored)
    assert command.reason == "not_an_order_payment"


@pytest.mark.parametrize(
    "type_",
    ["payment_intent.created", "payment_intent.requires_action", "charge.succeeded", "x"],
)
def test_other_event_types_are_ignored(type_: str) -> None:
    command = command_for(event(type_, intent(status="succeeded")), order_of)

    assert isinstance(command, Ignored)
    assert command.reason == "unhandled_event_type"
    assert type_ in command.detail


# --- which notifications are believed ----------------------------------------------


def signature(body: bytes, *, secret: str = SECRET, at: float | None = None) -> str:
    """The Stripe-Signature header Stripe would send with `body`."""
    timestamp = int(time.time() if at is None else at)
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def stripe_event(**fields: Any) -> dict[str, Any]:
    return {
        "id": "evt_1",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": 1_767_225_600,
        "livemode": False,
        "data": {"object": intent(status="succeeded")},
        **fields,
    }


def test_a_signed_event_is_believed_and_parsed() -> None:
    body = json.dumps(stripe_event()).encode()

    parsed, payload = verified_event(body, signature(body), SECRET, TOLERANCE)

    assert parsed == ProviderEvent("evt_1", "payment_intent.succeeded", intent(status="succeeded"))
    assert payload == stripe_event()


def test_one_of_several_signatures_may_match_while_the_secret_is_rolled() -> None:
    body = json.dumps(stripe_event()).encode()
    timestamp, current = signature(body).split(",")
    header = f"{timestamp},v1={'0' * 64},{current}"

    parsed, _ = verified_event(body, header, SECRET, TOLERANCE)

    assert parsed.id == "evt_1"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda body: signature(body, secret="whsec_other"), id="other-secret"),
        pytest.param(lambda body: signature(body, at=time.time() - TOLERANCE - 5), id="stale"),
        pytest.param(lambda body: signature(body + b" "), id="other-body"),
        pytest.param(lambda body: signature(body).replace("t=", "t=1"), id="other-time"),
        pytest.param(lambda body: None, id="missing"),
        pytest.param(lambda body: "", id="empty"),
        pytest.param(lambda body: "t=soon,v1=abc", id="malformed"),
        pytest.param(lambda body: signature(body).split(",")[0], id="no-v1"),
    ],
)
def test_a_notification_not_provably_from_stripe_is_refused(header: Any) -> None:
    body = json.dumps(stripe_event()).encode()

    with pytest.raises(BadWebhook, match="Stripe-Signature"):
        verified_event(body, header(body), SECRET, TOLERANCE)


def test_the_signature_is_checked_before_the_body_is_read() -> None:
    with pytest.raises(BadWebhook, match="signature"):
        verified_event(b"{not json", "t=1,v1=00", SECRET, TOLERANCE)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not acceptable JSON"),
        (b"[" * 100 + b"]" * 100, "not acceptable JSON"),
        (b'{"id": "evt_1", "type": "charge.refunded", "data": {"object": {"n": 1e999}}}', "JSON"),
        (b"[]", "not a Stripe event"),
        (b'"evt_1"', "not a Stripe event"),
        (b'{"id": "evt_1"}', "not a Stripe event"),
        (b'{"id": "", "type": "charge.refunded", "data": {"object": {}}}', "not a Stripe event"),
        (b'{"id": "evt_1", "type": "charge.refunded", "data": {}}', "not a Stripe event"),
        (b'{"id": "evt_1", "type": "charge.refunded", "data": {"object": []}}', "not a Stripe"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_a_signed_body_that_is_no_event_is_refused(body: bytes, problem: str) -> None:
    with pytest.raises(BadWebhook, match=problem):
        verified_event(body, signature(body), SECRET, TOLERANCE)
