from __future__ import annotations

import pytest

from kernel.errors import DomainError
from kernel.messages import Event
from orders.domain import Customer, customer_id_for
from orders.events import CustomerRegistered
from tests.support.snapshots import stored

ADA = customer_id_for("ada@example.com")


def test_registering_a_new_customer_records_the_normalised_email() -> None:
    customer = Customer(ADA)

    customer.register("  Ada@Example.COM ", "Ada Lovelace")

    assert customer.pending_events == (CustomerRegistered(ADA, "ada@example.com", "Ada Lovelace"),)


def test_the_customer_id_is_derived_from_the_normalised_email() -> None:
    assert customer_id_for(" ADA@example.com") == ADA
    assert customer_id_for("grace@example.com") != ADA


def test_registering_an_email_twice_is_rejected_as_taken() -> None:
    customer = Customer(ADA)
    customer.replay([CustomerRegistered(ADA, "ada@example.com", "Ada Lovelace")])

    with pytest.raises(DomainError) as error:
        customer.register("ADA@example.com", "Another Ada")

    assert error.value.code == "email_taken"
    assert customer.pending_events == ()


def test_a_customer_id_that_does_not_belong_to_the_email_is_invalid() -> None:
    customer = Customer(customer_id_for("grace@example.com"))

    with pytest.raises(DomainError) as error:
        customer.register("ada@example.com", "Ada Lovelace")

    assert error.value.code == "invalid"


@pytest.mark.parametrize(
    "history", [[], [CustomerRegistered(ADA, "ada@example.com", "Ada Lovelace")]]
)
def test_a_snapshot_restores_the_same_customer(history: list[Event]) -> None:
    customer = Customer(ADA)
    customer.replay(history)

    restored = Customer.from_snapshot(ADA, customer.version, stored(customer.snapshot_state()))

    assert vars(restored) == vars(customer)
