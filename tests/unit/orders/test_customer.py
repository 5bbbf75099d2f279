from __future__ import annotations

import pytest

from kernel.errors import DomainError
from kernel.messages import Event, new_id
from orders.domain import Customer
from orders.events import CustomerRegistered
from tests.support.snapshots import stored

ADA = new_id()


def test_registering_a_new_customer_records_the_normalised_email() -> None:
    customer = Customer(ADA)

    customer.register("  Ada@Example.COM ", "Ada Lovelace")

    assert customer.pending_events == (CustomerRegistered(ADA, "ada@example.com", "Ada Lovelace"),)


def test_registering_a_customer_twice_is_rejected_as_taken() -> None:
    customer = Customer(ADA)
    customer.replay([CustomerRegistered(ADA, "ada@example.com", "Ada Lovelace")])

    with pytest.raises(DomainError) as error:
        customer.register("ADA@example.com", "Another Ada")

    assert error.value.code == "email_taken"
    assert customer.pending_events == ()


@pytest.mark.parametrize(
    "history", [[], [CustomerRegistered(ADA, "ada@example.com", "Ada Lovelace")]]
)
def test_a_snapshot_restores_the_same_customer(history: list[Event]) -> None:
    customer = Customer(ADA)
    customer.replay(history)

    restored = Customer.from_snapshot(ADA, customer.version, stored(customer.snapshot_state()))

    assert vars(restored) == vars(customer)
