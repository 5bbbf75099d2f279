"""The orders handlers driven through the real command bus, as the saga will drive them."""

from __future__ import annotations

from collections.abc import Callable

from config.bootstrap import Application
from kernel.messages import Event, Metadata, new_id
from kernel.results import Failure, Success
from orders.commands import (
    CancelOrder,
    ConfirmOrder,
    OrderLineRequest,
    PlaceOrder,
    RegisterCustomer,
)
from orders.events import Address, CancelledBy, CustomerRegistered, OrderCancelled, OrderConfirmed
from tests.integration.orders.support import Placer
from tests.support.api_client import Customer
from tests.support.shop import ADDRESS_DATA, PASSWORD_HASH


def _place(customer_id: str, order_id: str = "order-1") -> PlaceOrder:
    return PlaceOrder(
        order_id,
        customer_id,
        (OrderLineRequest("MUG-1", 1),),
        Address(**ADDRESS_DATA),
        "pm_card_visa",
    )


def test_confirming_twice_records_one_confirmation(
    application: Application,
    customer: Customer,
    place_order: Placer,
    stream: Callable[[str], list[Event]],
) -> None:
    order_id = place_order(customer).get_json()["order_id"]

    first = application.bus.dispatch(ConfirmOrder(order_id))
    second = application.bus.dispatch(ConfirmOrder(order_id))

    assert isinstance(first, Success) and isinstance(second, Success)
    assert stream(f"order-{order_id}")[1:] == [OrderConfirmed(order_id)]


def test_the_system_cancels_a_confirmed_order(
    application: Application, confirmed_order: str, stream: Callable[[str], list[Event]]
) -> None:
    result = application.bus.dispatch(
        CancelOrder(confirmed_order, "payment refunded", CancelledBy.SYSTEM)
    )

    assert isinstance(result, Success)
    assert stream(f"order-{confirmed_order}")[-1] == OrderCancelled(
        confirmed_order, "payment refunded", CancelledBy.SYSTEM, "confirmed"
    )


def test_confirming_a_cancelled_order_fails_with_its_code(
    application: Application, customer: Customer, place_order: Placer
) -> None:
    order_id = place_order(customer).get_json()["order_id"]
    application.bus.dispatch(CancelOrder(order_id, "out of stock", CancelledBy.SYSTEM))

    result = application.bus.dispatch(ConfirmOrder(order_id))

    assert isinstance(result, Failure)
    assert result.code == "order_not_confirmable"


def test_confirming_an_unknown_order_is_not_found(application: Application) -> None:
    result = application.bus.dispatch(ConfirmOrder("no-such-order"))

    assert isinstance(result, Failure)
    assert result.code == "not_found"


def test_an_unregistered_customer_cannot_place_orders(
    application: Application, count_events: Callable[[str], int]
) -> None:
    result = application.bus.dispatch(_place(new_id()))

    assert isinstance(result, Failure)
    assert result.code == "not_found"
    assert count_events("OrderPlaced") == 0


def test_an_order_id_cannot_be_placed_twice(application: Application, customer: Customer) -> None:
    assert isinstance(application.bus.dispatch(_place(customer.customer_id)), Success)

    result = application.bus.dispatch(_place(customer.customer_id))

    assert isinstance(result, Failure)
    assert result.code == "order_exists"


def test_placing_records_who_asked(application: Application, customer: Customer) -> None:
    actor = f"customer:{customer.customer_id}"
    application.bus.dispatch(_place(customer.customer_id), Metadata(actor=actor))

    with application.engine.connect() as conn:
        (recorded,) = application.store.read_stream(conn, "order-order-1")
    assert recorded.metadata.actor == actor


def test_registering_an_email_taken_under_another_id_is_refused_and_records_nothing(
    application: Application, stream: Callable[[str], list[Event]]
) -> None:
    first, second = new_id(), new_id()
    application.bus.dispatch(RegisterCustomer(first, "ada@example.com", "Ada", PASSWORD_HASH))

    result = application.bus.dispatch(
        RegisterCustomer(second, " ADA@example.com", "Eve", PASSWORD_HASH)
    )

    assert result == Failure("email_taken", "the email is registered already")
    assert stream(f"customer-{second}") == []


def test_registering_through_the_bus_stores_the_customer(
    application: Application, stream: Callable[[str], list[Event]]
) -> None:
    customer_id = new_id()

    result = application.bus.dispatch(
        RegisterCustomer(customer_id, "grace@example.com", "Grace", PASSWORD_HASH)
    )

    assert isinstance(result, Success)
    assert result.aggregate_id == customer_id
    assert stream(f"customer-{customer_id}") == [
        CustomerRegistered(customer_id, "grace@example.com", "Grace")
    ]
