from __future__ import annotations

import json

import marshmallow as ma
import pytest

from payments.webhooks import (
    BadSignature,
    PaymentNotification,
    PaymentNotificationSchema,
    sign,
    simulated_notification,
    verify,
)

SECRET = "whsec_test"
BODY = b'{"id":"evt_1","type":"payment.succeeded"}'
NOW = 1_767_225_600
TOLERANCE = 300


def test_a_signature_verifies_against_the_body_it_signs() -> None:
    header = sign(SECRET, BODY, NOW)

    verify(SECRET, BODY, header, now=NOW + 10, tolerance=TOLERANCE)


def test_the_header_carries_the_timestamp_and_a_hex_hmac() -> None:
    header = sign(SECRET, BODY, NOW)

    timestamp, mac = header.split(",")
    assert timestamp == f"t={NOW}"
    assert mac.startswith("v1=") and len(mac) == 3 + 64
    int(mac[3:], 16)


def test_the_timestamp_is_part_of_what_is_signed() -> None:
    forged = sign(SECRET, BODY, NOW).replace(f"t={NOW}", f"t={NOW + 1}")

    with pytest.raises(BadSignature, match="does not match"):
        verify(SECRET, BODY, forged, now=NOW, tolerance=TOLERANCE)


def test_a_signature_made_with_another_secret_is_refused() -> None:
    with pytest.raises(BadSignature, match="does not match"):
        verify(SECRET, BODY, sign("another secret", BODY, NOW), now=NOW, tolerance=TOLERANCE)


def test_a_tampered_body_is_refused() -> None:
    header = sign(SECRET, BODY, NOW)

    with pytest.raises(BadSignature, match="does not match"):
        verify(SECRET, BODY.replace(b"succeeded", b"failed"), header, now=NOW, tolerance=300)


@pytest.mark.parametrize("header", [None, ""])
def test_a_missing_header_is_refused(header: str | None) -> None:
    with pytest.raises(BadSignature, match="missing"):
        verify(SECRET, BODY, header, now=NOW, tolerance=TOLERANCE)


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "v1=abc",
        f"t={NOW}",
        f"t=soon,v1={'0' * 64}",
        f"t=-{NOW},v1={'0' * 64}",
        f"t={NOW},t={NOW},v1={'0' * 64}",
        f"t={'9' * 5000},v1={'0' * 64}",
        f"t=١٢٣,v1={'0' * 64}",
    ],
)
def test_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(BadSignature):
        verify(SECRET, BODY, header, now=NOW, tolerance=TOLERANCE)


def test_any_of_several_signatures_may_match_so_the_secret_can_be_rolled() -> None:
    current = sign(SECRET, BODY, NOW).split(",")[1]
    header = f"t={NOW},v1={'0' * 64},{current}"

    verify(SECRET, BODY, header, now=NOW, tolerance=TOLERANCE)


@pytest.mark.parametrize("age", [TOLERANCE + 1, -(TOLERANCE + 1)])
def test_a_timestamp_outside_the_replay_window_is_refused(age: int) -> None:
    header = sign(SECRET, BODY, NOW - age)

    with pytest.raises(BadSignature, match="timestamp"):
        verify(SECRET, BODY, header, now=NOW, tolerance=TOLERANCE)


@pytest.mark.parametrize("age", [TOLERANCE, -TOLERANCE])
def test_a_timestamp_at_the_edge_of_the_window_is_accepted(age: int) -> None:
    verify(SECRET, BODY, sign(SECRET, BODY, NOW - age), now=NOW, tolerance=TOLERANCE)


def test_the_simulated_provider_sends_the_documented_shape() -> None:
    body = json.loads(simulated_notification("o-1", "failed", "card_declined", "evt_7"))

    assert body == {
        "id": "evt_7",
        "type": "payment.failed",
        "data": {"order_id": "o-1", "reason": "card_declined"},
        "created": body["created"],
    }
    assert isinstance(body["created"], int)


def test_the_simulated_provider_invents_a_fresh_event_id_each_time() -> None:
    first, second = (json.loads(simulated_notification("o-1"))["id"] for _ in range(2))

    assert first.startswith("evt_")
    assert first != second


def test_the_simulated_provider_knows_only_two_outcomes() -> None:
    with pytest.raises(ValueError, match="outcome"):
        simulated_notification("o-1", "pending")


def test_a_notification_body_loads_into_a_notification() -> None:
    body = simulated_notification("o-1", "failed", "card_declined", "evt_7")

    notification = PaymentNotificationSchema().loads(body)

    assert notification == PaymentNotification("evt_7", "o-1", "failed", "card_declined")


def test_fields_the_provider_adds_later_are_tolerated() -> None:
    payload = json.loads(simulated_notification("o-1", provider_event_id="evt_7"))
    payload["livemode"] = False
    payload["data"]["amount"] = 2500

    notification = PaymentNotificationSchema().load(payload)

    assert notification == PaymentNotification("evt_7", "o-1", "succeeded", None)


def test_every_bad_field_is_reported() -> None:
    with pytest.raises(ma.ValidationError) as error:
        PaymentNotificationSchema().load({"id": "", "type": "payment.refunded", "data": {}})

    assert set(error.value.messages) == {"id", "type", "data", "created"}


def test_a_provider_event_always_maps_to_the_same_command_id() -> None:
    first = PaymentNotification("evt_7", "o-1", "succeeded")
    again = PaymentNotification("evt_7", "o-1", "succeeded")
    other = PaymentNotification("evt_8", "o-1", "succeeded")

    assert first.command_id == again.command_id != other.command_id
