"""Sealing personal fields: what opens with which key, what reads as erased, and the
stored samples every release must still read (contract tests of the stored shapes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from kernel.messages import Event
from kernel.money import Money
from kernel.personal_data import (
    ERASED,
    PersonalFields,
    check_declaration,
    new_key,
    opened_payload,
    seal,
    sealed_payload,
    unseal,
)
from kernel.registry import EventRegistry
from orders.events import UPCASTERS, Address, CustomerRegistered, OrderPlaced, PricedLine

GRACE = "3f1c2a9e-5b7d-4e21-9c0f-8a6b4d2e1f30"
SAMPLE_KEY = bytes(range(32))
ADDRESS = {
    "name": "Grace Hopper",
    "line1": "1 Navy Yard",
    "city": "Arlington",
    "postal_code": "22202",
    "country": "US",
}
# As stored: v1 before personal fields were sealed, v2 sealed with SAMPLE_KEY.
REGISTERED_V1 = {"customer_id": GRACE, "email": "grace@example.com", "name": "Grace Hopper"}
REGISTERED_V2 = {
    "customer_id": GRACE,
    "personal": {
        "subject": GRACE,
        "sealed": "BwcHBwcHBwcHBwcHdEjDMQ5mu9b8v3Ty4TKR28Qk7B74m+Q3ndQz2Cj8XHpKIdNEoweG82Gbgb"
        "WtZ6lDyWrO5LOS3WQsxBAnxiwgRtJSww==",
    },
}
MONEY = {"amount": 1250, "currency": "USD"}
ORDER: dict[str, Any] = {
    "order_id": "9d2b7c1e-0a4f-4c6e-8b3d-5f1e2a7c9b40",
    "customer_id": GRACE,
    "lines": [
        {"sku": "MUG-1", "name": "Enamel mug", "quantity": 1, "unit_price": MONEY,
         "line_total": MONEY}
    ],
    "subtotal": MONEY,
    "shipping": {"amount": 499, "currency": "USD"},
    "total": {"amount": 1749, "currency": "USD"},
    "payment_token": "pm_card_visa",
}  # fmt: skip
PLACED_V1 = ORDER | {"shipping_address": ADDRESS}
PLACED_V2 = ORDER | {
    "personal": {
        "subject": GRACE,
        "sealed": "BwcHBwcHBwcHBwcHdEjVNAZ/p52o+kzh5DWG/tIvr0nz1e94k958wCaZQHpEIdE27jCE93Dcjd"
        "+ufrdDimqJa+SBT2rrkcG7DMrn0mmHk1v9sQj7bppFLI7td66rVnAMlN4kR5tbCwELSGPu7LWtn+x5JL1tU"
        "OpF/7WYJdlIrAwPFlFNmsX6Qgx98SfqnJr2MttwkQzT",
    }
}
ERASED_ADDRESS = Address(*[ERASED] * 7)


@pytest.fixture
def registry() -> EventRegistry:
    registry = EventRegistry()
    registry.register(CustomerRegistered, OrderPlaced)
    for type_name, version, upcaster in UPCASTERS:
        registry.add_upcaster(type_name, version, upcaster)
    return registry


def grace_placed(address: Address) -> OrderPlaced:
    usd, none = Money(1250, "USD"), Money(0, "USD")
    line = PricedLine("MUG-1", "Enamel mug", 1, usd, usd, none, none, usd)
    return OrderPlaced(
        ORDER["order_id"], GRACE, (line,), usd, Money(499, "USD"), Money(1749, "USD"), address,
        "pm_card_visa", (), none, (), none, address,
    )  # fmt: skip


def test_stored_v1_events_read_as_they_were_written(registry: EventRegistry) -> None:
    registered = registry.read("CustomerRegistered", 1, REGISTERED_V1)
    assert registered == CustomerRegistered(GRACE, "grace@example.com", "Grace Hopper")
    assert registry.read("OrderPlaced", 1, PLACED_V1) == grace_placed(Address(**ADDRESS))


def test_stored_v2_events_open_with_their_customers_key(registry: EventRegistry) -> None:
    registered = registry.read("CustomerRegistered", 2, REGISTERED_V2, SAMPLE_KEY)
    assert registered == CustomerRegistered(GRACE, "grace@example.com", "Grace Hopper")
    placed = registry.read("OrderPlaced", 2, PLACED_V2, SAMPLE_KEY)
    assert placed == grace_placed(Address(**ADDRESS))


def test_stored_v2_events_without_their_key_read_erased_and_otherwise_whole(
    registry: EventRegistry,
) -> None:
    assert registry.read("CustomerRegistered", 2, REGISTERED_V2) == CustomerRegistered(
        GRACE, ERASED, ERASED
    )
    assert registry.read("OrderPlaced", 2, PLACED_V2) == grace_placed(ERASED_ADDRESS)


def test_another_key_or_another_subject_does_not_open_an_envelope() -> None:
    envelope = seal(SAMPLE_KEY, GRACE, {"email": "grace@example.com"})
    assert unseal(SAMPLE_KEY, envelope) == {"email": "grace@example.com"}
    with pytest.raises(ValueError):
        unseal(new_key(), envelope)
    with pytest.raises(ValueError):  # the subject is bound in: no passing it off as Bob's
        unseal(SAMPLE_KEY, envelope | {"subject": "bob"})
    with pytest.raises(ValueError):
        unseal(SAMPLE_KEY, envelope | {"sealed": envelope["sealed"][:-8] + "AAAAAAA="})


def test_sealing_moves_only_the_declared_fields_and_each_seal_differs() -> None:
    declared = OrderPlaced.personal_fields
    stored = sealed_payload(declared, dict(PLACED_V1), SAMPLE_KEY)
    assert "shipping_address" not in stored and "Navy Yard" not in str(stored)
    assert {k: v for k, v in stored.items() if k != "personal"} == ORDER
    again = sealed_payload(declared, dict(PLACED_V1), SAMPLE_KEY)
    assert again["personal"]["sealed"] != stored["personal"]["sealed"]  # a fresh nonce
    assert opened_payload(OrderPlaced, stored, SAMPLE_KEY) == PLACED_V1


@dataclass(frozen=True, slots=True)
class Scored(Event):
    personal_fields: ClassVar[PersonalFields] = PersonalFields("person_id", ("score",))
    person_id: str
    score: int


@dataclass(frozen=True, slots=True)
class Misnamed(Event):
    personal_fields: ClassVar[PersonalFields] = PersonalFields("person_id", ("nickname",))
    person_id: str
    name: str


@pytest.mark.parametrize(
    ("event_class", "why"),
    [(Scored, "must be a string"), (Misnamed, "has no field")],
)
def test_a_declaration_that_could_not_be_erased_fails_at_registration(
    event_class: type[Any], why: str
) -> None:
    with pytest.raises(TypeError, match=why):
        check_declaration(event_class)
    with pytest.raises(TypeError, match=why):
        EventRegistry().register(event_class)
