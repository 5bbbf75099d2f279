"""Payments get snapshots; loading from one equals replaying the whole stream."""

from __future__ import annotations

from config.bootstrap import Application
from kernel.money import Money
from kernel.results import Success
from payments.commands import CompletePayment, ProcessPayment, RefundPayment
from payments.domain import Payment
from payments.events import PaymentPending, PaymentRefunded, PaymentSucceeded
from tests.integration.payments.conftest import RecordingGateway, payment_events
from tests.integration.snapshots import replay_stream, snapshot_of, snapshotting_bus, uow_load

EUR_10 = Money(1000, "EUR")


def test_a_payment_snapshot_and_the_events_after_it_load_like_a_full_replay(
    application: Application, gateway: RecordingGateway
) -> None:
    bus = snapshotting_bus(application, interval=3, gateway=gateway)
    before_snapshot = [
        ProcessPayment("o-1", EUR_10, "tok_timeout"),
        CompletePayment("o-1", "evt_1", "failed", "card_declined"),
        ProcessPayment("o-1", EUR_10, "tok_timeout"),  # version 3: snapshotted
    ]
    # After it, the provider event the snapshot remembers is a no-op, a new one completes
    # the charge it references, and the refund goes to that charge.
    after_snapshot = [
        CompletePayment("o-1", "evt_1", "succeeded"),
        CompletePayment("o-1", "evt_2", "succeeded"),
        RefundPayment("o-1", "order cancelled"),
    ]

    results = [bus.dispatch(command) for command in before_snapshot + after_snapshot]

    assert all(isinstance(result, Success) for result in results), results
    *_, retried, succeeded, refunded = payment_events(application, "o-1")
    assert isinstance(retried, PaymentPending)
    assert succeeded == PaymentSucceeded("o-1", EUR_10, retried.provider_reference, "evt_2")
    assert isinstance(refunded, PaymentRefunded)
    ((reference, amount, _key),) = gateway.refunds
    assert (reference, amount) == (retried.provider_reference, EUR_10)
    version, state = snapshot_of(application, Payment.stream_for("o-1"))
    assert version == 3
    assert state == replay_stream(application, Payment, "o-1", up_to=3).snapshot_state()
    from_snapshot = uow_load(application, Payment, "o-1")
    full = replay_stream(application, Payment, "o-1")
    assert from_snapshot.version == full.version == 5
    assert vars(from_snapshot) == vars(full)
