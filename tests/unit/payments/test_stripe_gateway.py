"""Where a PaymentIntent stands, as the gateway reports it: Stripe's statuses mapped to
the three outcomes the payments context knows."""

from __future__ import annotations

from typing import Any

import pytest

from payments.gateway import ChargeResult
from payments.stripe_gateway import PENDING_STATUSES, charge_result, payment_error_reason

AUTHENTICATION_FAILURE = "payment_intent_authentication_failure"


def intent(status: str | None, **fields: Any) -> dict[str, Any]:
    return {"id": "pi_1", "object": "payment_intent", "amount": 1000, "status": status, **fields}


def test_a_succeeded_intent_succeeded_with_the_amount_received() -> None:
    assert charge_result(intent("succeeded", amount_received=900)) == ChargeResult(
        "succeeded", reference="pi_1", captured=900
    )


@pytest.mark.parametrize("received", [None, "1000", 10.0])
def test_a_succeeded_intent_without_an_integer_amount_received_leaves_it_open(
    received: object,
) -> None:
    fields = {} if received is None else {"amount_received": received}

    assert charge_result(intent("succeeded", **fields)) == ChargeResult.succeeded("pi_1")


@pytest.mark.parametrize(
    "status", ["requires_action", "requires_confirmation", "requires_capture", "processing"]
)
def test_an_intent_waiting_on_the_customer_or_the_network_is_pending(status: str) -> None:
    assert status in PENDING_STATUSES
    assert charge_result(intent(status)) == ChargeResult.pending("pi_1")


def test_a_canceled_intent_failed() -> None:
    assert charge_result(intent("canceled")) == ChargeResult.failed("canceled", "pi_1")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ({"code": "card_declined", "decline_code": "insufficient_funds"}, "insufficient_funds"),
        ({"code": "card_declined", "decline_code": None}, "card_declined"),
        ({"code": "payment_intent_authentication_failure"}, AUTHENTICATION_FAILURE),
        ({}, "unspecified"),
        (None, "unspecified"),
    ],
)
def test_an_intent_needing_another_payment_method_failed_with_the_most_precise_reason(
    error: dict[str, Any] | None, reason: str
) -> None:
    failed = intent("requires_payment_method", last_payment_error=error)

    assert charge_result(failed) == ChargeResult.failed(reason, "pi_1")


@pytest.mark.parametrize("status", [None, "something_new"])
def test_an_intent_in_no_known_status_failed_unspecified(status: str | None) -> None:
    assert charge_result(intent(status)) == ChargeResult.failed("unspecified", "pi_1")


@pytest.mark.parametrize("error", ["card_declined", 7, ["card_declined"]])
def test_an_error_that_is_not_an_object_is_unspecified(error: object) -> None:
    assert payment_error_reason(error) == "unspecified"
