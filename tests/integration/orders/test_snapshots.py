"""Orders and customers get snapshots; loading from one equals replaying the whole stream."""

from __future__ import annotations

from collections.abc import Callable

from config.bootstrap import Application
from kernel.messages import Event, new_id
from kernel.results import Failure, Success
from orders.commands import (
    CancelOrder,
    ConfirmOrder,
    OrderLineRequest,
    PlaceOrder,
    RegisterCustomer,
)
from orders.domain import Customer, Order
from orders.events import CancelledBy, OrderCancelled, OrderConfirmed, OrderPlaced
from tests.integration.snapshots import replay_stream, snapshot_of, snapshotting_bus, uow_load
from tests.support.api_client import Customer as RegisteredCustomer
from tests.support.shop import ADDRESS, PASSWORD_HASH


def test_an_order_snapshot_and_the_event_after_it_load_like_a_full_replay(
    application: Application, customer: RegisteredCustomer, stream: Callable[[str], list[Event]]
) -> None:
    bus = snapshotting_bus(application, interval=2)
    order_id = new_id()
    lines = (OrderLineRequest("MUG-1", 2),)
    placed = bus.dispatch(
        PlaceOrder(order_id, customer.customer_id, lines, ADDRESS, "pm_card_visa")
    )
    assert isinstance(placed, Success), placed
    assert isinstance(bus.dispatch(ConfirmOrder(order_id)), Success)  # version 2: snapshotted

    # The commands after the snapshot decide on the status and customer it restored.
    confirmed_again = bus.dispatch(ConfirmOrder(order_id))
    strangers = bus.dispatch(CancelOrder(order_id, "not mine", CancelledBy.CUSTOMER, new_id()))
    cancelled = bus.dispatch(
        CancelOrder(order_id, "changed my mind", CancelledBy.CUSTOMER, customer.customer_id)
    )

    assert isinstance(confirmed_again, Success)
    assert isinstance(strangers, Failure) and strangers.code == "not_found"
    assert isinstance(cancelled, Success)
    placed_event, *rest = stream(Order.stream_for(order_id))
    assert isinstance(placed_event, OrderPlaced)
    assert rest == [
        OrderConfirmed(order_id),
        OrderCancelled(order_id, "changed my mind", CancelledBy.CUSTOMER, "confirmed"),
    ]
    version, state = snapshot_of(application, Order.stream_for(order_id))
    assert version == 2
    assert state == replay_stream(application, Order, order_id, up_to=2).snapshot_state()
    from_snapshot = uow_load(application, Order, order_id)
    full = replay_stream(application, Order, order_id)
    assert from_snapshot.version == full.version == 3
    assert vars(from_snapshot) == vars(full)


def test_a_customer_snapshot_loads_like_a_full_replay(application: Application) -> None:
    bus = snapshotting_bus(application, interval=1)
    ada = new_id()
    registered = bus.dispatch(
        RegisterCustomer(ada, "Ada@Example.com", "Ada Lovelace", PASSWORD_HASH)
    )
    assert isinstance(registered, Success), registered

    # A customer's stream holds one event: the snapshot is all a load reads.
    again = bus.dispatch(RegisterCustomer(ada, "grace@example.com", "Another Ada", PASSWORD_HASH))

    assert again == Failure("email_taken", f"customer {ada} is already registered")
    version, state = snapshot_of(application, Customer.stream_for(ada))
    assert version == 1
    assert state == replay_stream(application, Customer, ada).snapshot_state()
    from_snapshot = uow_load(application, Customer, ada)
    full = replay_stream(application, Customer, ada)
    assert from_snapshot.version == full.version == 1
    assert vars(from_snapshot) == vars(full)
