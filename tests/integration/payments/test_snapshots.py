"""Payments get snapshots; loading from one equals replaying the whole stream."""

from __future__ import annotations

from config.bootstrap import Application
from kernel.messages import Command
from kernel.money import Money
from kernel.results import Success
from payments.commands import (
    ProcessPayment,
    RecordChargeOutcome,
    RecordRefundOutcome,
    RefundPayment,
)
from payments.domain import Payment
from payments.events import (
    PaymentFailed,
    PaymentPending,
    PaymentRequested,
    PaymentSucceeded,
    RefundFailed,
    RefundRequested,
)
from tests.integration.payments.conftest import EUR_10, payment_events
from tests.integration.snapshots import replay_stream, snapshot_of, snapshotting_bus, uow_load

EUR_9 = Money(900, "EUR")
AUTHENTICATION_FAILED = "payment_intent_authentication_failure"


def test_a_payment_snapshot_and_the_events_after_it_load_like_a_full_replay(
    application: Application, order_id: str
) -> None:
    bus = snapshotting_bus(application, 3)
    commands: list[Command] = [
        ProcessPayment(order_id, EUR_10, "pm_card_authenticationRequired"),
        RecordChargeOutcome(order_id, 1, "pending", "pi_a"),
        RecordChargeOutcome(
            order_id, 1, "failed", "pi_a", AUTHENTICATION_FAILED, provider_event_id="evt_1"
        ),  # version 3: snapshotted
        ProcessPayment(order_id, EUR_10, "pm_card_visa"),
        # The event the snapshot remembers is a no-op (not a refusal: its attempt is over).
        RecordChargeOutcome(
            order_id, 1, "failed", "pi_a", AUTHENTICATION_FAILED, provider_event_id="evt_1"
        ),
        RecordChargeOutcome(
            order_id, 2, "succeeded", "pi_b", amount_captured=900, provider_event_id="evt_2"
        ),
        RefundPayment(order_id, "order cancelled"),  # version 6: snapshotted
        RecordRefundOutcome(order_id, "failed", reason="charge_disputed"),
        RefundPayment(order_id, "order cancelled"),  # the captured amount, a new refund key
    ]

    results = [bus.dispatch(command) for command in commands]

    assert all(isinstance(result, Success) for result in results), results
    assert payment_events(application, order_id) == [
        PaymentRequested(order_id, EUR_10, "pm_card_authenticationRequired", 1),
        PaymentPending(order_id, EUR_10, "pi_a"),
        PaymentFailed(order_id, EUR_10, AUTHENTICATION_FAILED, "evt_1"),
        PaymentRequested(order_id, EUR_10, "pm_card_visa", 2),
        PaymentSucceeded(order_id, EUR_10, "pi_b", "evt_2", EUR_9),
        RefundRequested(order_id, EUR_9, "order cancelled", 1),
        RefundFailed(order_id, EUR_9, "charge_disputed"),
        RefundRequested(order_id, EUR_9, "order cancelled", 2),
    ]
    version, state = snapshot_of(application, Payment.stream_for(order_id))
    assert version == 6
    assert state == replay_stream(application, Payment, order_id, up_to=6).snapshot_state()
    assert state["provider_events"] == ["evt_1", "evt_2"]
    from_snapshot = uow_load(application, Payment, order_id)
    full = replay_stream(application, Payment, order_id)
    assert from_snapshot.version == full.version == 8
    assert vars(from_snapshot) == vars(full)
    assert from_snapshot.call_key == f"payment-{order_id}-refund-2"
