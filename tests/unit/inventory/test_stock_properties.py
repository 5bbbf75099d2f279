"""Random restock/reserve/release/commit sequences on one SKU against a dict model."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.domain import Reservation, StockItem
from inventory.events import ProductAdded, StockLine
from kernel.errors import DomainError
from kernel.messages import Event
from kernel.money import Money

SKU = "MUG-001"
ORDERS = ("o-1", "o-2", "o-3", "o-4", "o-5")


@dataclass(frozen=True)
class Restock:
    quantity: int


@dataclass(frozen=True)
class Reserve:
    order_id: str
    quantity: int


@dataclass(frozen=True)
class Release:
    order_id: str


@dataclass(frozen=True)
class Commit:
    order_id: str


Operation = Restock | Reserve | Release | Commit

orders = st.sampled_from(ORDERS)
operations = st.one_of(
    st.builds(Restock, st.integers(1, 5)),
    st.builds(Reserve, orders, st.integers(1, 6)),
    st.builds(Release, orders),
    st.builds(Commit, orders),
)


class Model:
    """What should happen, in plain dicts: each order decides its reservation once."""

    def __init__(self, on_hand: int) -> None:
        self.on_hand = on_hand
        self.held: dict[str, int] = {}
        self.status: dict[str, str] = {}

    @property
    def reserved(self) -> int:
        return sum(self.held.values())

    def run(self, op: Operation) -> bool:
        """Apply `op`; False when the domain must reject it."""
        match op:
            case Restock(quantity=quantity):
                self.on_hand += quantity
            case Reserve(order_id=order, quantity=quantity) if order not in self.status:
                fits = quantity <= self.on_hand - self.reserved
                self.status[order] = "reserved" if fits else "failed"
                if fits:
                    self.held[order] = quantity
            case Release(order_id=order) if self.status.get(order) == "reserved":
                self.status[order] = "released"
                del self.held[order]
            case Commit(order_id=order):
                state = self.status.get(order)
                if state not in ("reserved", "committed"):
                    return False
                if state == "reserved":
                    self.status[order] = "committed"
                    self.on_hand -= self.held.pop(order)
        return True


@settings(max_examples=300, deadline=None)
@given(initial=st.integers(0, 10), ops=st.lists(operations, max_size=40))
def test_stock_follows_the_model_and_never_goes_negative(
    initial: int, ops: list[Operation]
) -> None:
    item = StockItem(SKU)
    item.replay([ProductAdded(SKU, "Mug", Money(1200, "EUR"), initial)])
    history: list[Event] = []
    reservations = {order: Reservation(order) for order in ORDERS}
    model = Model(initial)

    for op in ops:
        allowed = model.run(op)
        stock = {SKU: item}
        match op:
            case Restock(quantity=quantity):
                item.restock(quantity)
            case Reserve(order_id=order, quantity=quantity):
                reservations[order].reserve([StockLine(SKU, quantity)], stock)
            case Release(order_id=order):
                reservations[order].release(stock)
            case Commit(order_id=order) if allowed:
                reservations[order].commit(stock)
            case Commit(order_id=order):
                with pytest.raises(DomainError):
                    reservations[order].commit(stock)
        history += item.pending_events
        item.mark_saved()

        assert item.available >= 0
        assert (item.on_hand, item.reserved, item.available) == (
            model.on_hand, model.reserved, model.on_hand - model.reserved,
        )  # fmt: skip
        assert item.reservations == model.held

    replayed = StockItem(SKU)
    replayed.replay([ProductAdded(SKU, "Mug", Money(1200, "EUR"), initial), *history])
    assert replayed.snapshot_state() == item.snapshot_state()
