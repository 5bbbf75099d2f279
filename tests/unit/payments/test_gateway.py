from __future__ import annotations

import pytest

from kernel.money import Money
from payments.gateway import ChargeResult, RefundResult, SimulatedGateway

EUR_10 = Money(1000, "EUR")


@pytest.mark.parametrize(
    ("token", "status", "reason"),
    [
        ("tok_visa", "succeeded", None),
        ("tok_declined", "failed", "card_declined"),
        ("tok_insufficient_funds", "failed", "insufficient_funds"),
        ("tok_async", "pending", None),
        ("tok_timeout", "pending", None),
        ("tok_unknown", "failed", "invalid_token"),
        ("", "failed", "invalid_token"),
    ],
)
def test_the_token_decides_the_charge_outcome(token: str, status: str, reason: str | None) -> None:
    result = SimulatedGateway().charge("o-1", EUR_10, token, "key-1")

    assert (result.status, result.reason) == (status, reason)
    assert (result.reference is None) == (status == "failed")


def test_a_charge_repeated_with_the_same_key_gets_the_same_reference() -> None:
    gateway = SimulatedGateway()

    first = gateway.charge("o-1", EUR_10, "tok_visa", "key-1")
    again = gateway.charge("o-1", EUR_10, "tok_visa", "key-1")
    other = gateway.charge("o-1", EUR_10, "tok_visa", "key-2")

    assert first == again == ChargeResult.succeeded(str(first.reference))
    assert other.reference != first.reference


def test_a_pending_charge_has_a_reference_derived_from_the_key() -> None:
    gateway = SimulatedGateway()

    assert gateway.charge("o-1", EUR_10, "tok_timeout", "key-1").reference == (
        gateway.charge("o-1", EUR_10, "tok_visa", "key-1").reference
    )


def test_an_async_charge_is_marked_for_the_simulated_callback() -> None:
    gateway = SimulatedGateway()

    async_charge = gateway.charge("o-1", EUR_10, "tok_async", "key-1")
    silent_charge = gateway.charge("o-1", EUR_10, "tok_timeout", "key-1")

    assert (async_charge.reference or "").startswith(SimulatedGateway.ASYNC_PREFIX)
    assert not (silent_charge.reference or "").startswith(SimulatedGateway.ASYNC_PREFIX)
    assert async_charge.reference == gateway.charge("o-1", EUR_10, "tok_async", "key-1").reference


def test_refunds_succeed_with_a_reference_derived_from_the_key() -> None:
    gateway = SimulatedGateway()

    first = gateway.refund("sim_ch_1", EUR_10, "refund-1")
    again = gateway.refund("sim_ch_1", EUR_10, "refund-1")

    assert first == again == RefundResult.succeeded(str(first.reference))
    assert gateway.refund("sim_ch_1", EUR_10, "refund-2").reference != first.reference
