"""Many orders walked down random fates through the shared Shop, as the fulfillment saga
would walk them, with the catalog changing now and then."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from inventory.commands import RestockProduct
from kernel.money import Money
from orders.events import CancelledBy
from tests.support.payments import DECLINED, SUCCEEDS
from tests.support.shop import BIG_CATALOG, PlacedOrder, Shop

SKUS_BY_CURRENCY = {"EUR": ("MUG-1", "TEE-1", "CAP-1"), "GBP": ("BOOK-1", "PEN-1")}


# Each fate is the saga's path for one order: its steps and the order's final status.
FATES: dict[str, tuple[tuple[str, ...], str]] = {
    "pending": (("place",), "pending"),
    "confirmed": (("place", "reserve", "pay", "confirm"), "confirmed"),
    "shipped": (("place", "reserve", "pay", "confirm", "ship", "commit"), "shipped"),
    "cancelled": (("place", "reserve", "cancel", "release"), "cancelled"),
    "declined": (("place", "reserve", "pay", "release", "cancel"), "cancelled"),
    "refunded": (
        ("place", "reserve", "pay", "confirm", "cancel", "refund", "release"),
        "cancelled",
    ),
    "out_of_stock": (("place", "reserve", "cancel"), "cancelled"),
    "returned": (
        ("place", "reserve", "pay", "confirm", "ship", "commit", "refund"),
        "refunded",
    ),
    "refunded_unshipped": (
        ("place", "reserve", "pay", "confirm", "refund", "cancel", "release"),
        "cancelled",
    ),
}


@dataclass
class ScriptedOrder:
    fate: str
    customer_id: str
    lines: dict[str, int]
    token: str
    steps: list[str]
    placed: PlacedOrder | None = None

    @property
    def status(self) -> str:
        return FATES[self.fate][1]

    @property
    def order(self) -> PlacedOrder:
        assert self.placed is not None
        return self.placed


@dataclass
class Scenario:
    customers: list[str]
    orders: list[ScriptedOrder] = field(default_factory=list)


def mixed_orders(
    shop: Shop,
    *,
    count: int,
    seed: int,
    customers: int = 8,
    every: int = 0,
    then: Callable[[], object] = lambda: None,
) -> Scenario:
    """Place `count` orders and walk each down a random fate, interleaving their steps.

    Now and then the catalog changes (restock, new price). With `every`, `then()`
    runs after every `every` commands (to drain read models incrementally).
    """
    rng = random.Random(seed)
    shop.add_products(BIG_CATALOG)
    scenario = Scenario([shop.customer(f"customer{n}@example.com") for n in range(customers)])
    for _ in range(count):
        fate = rng.choice(list(FATES))
        currency = rng.choice(["EUR", "EUR", "GBP"])
        skus = rng.sample(SKUS_BY_CURRENCY[currency], rng.randint(1, 2))
        lines = {sku: rng.randint(1, 3) for sku in skus}
        if fate == "out_of_stock":
            lines = {"RARE-1": 6, "MUG-1": 1}
        token = DECLINED if fate == "declined" else SUCCEEDS
        steps = list(FATES[fate][0])
        scenario.orders.append(
            ScriptedOrder(fate, rng.choice(scenario.customers), lines, token, steps)
        )
    active = list(range(count))
    done = 0
    while active:
        if rng.random() < 0.03:
            _change_catalog(shop, rng)
        index = rng.choice(active)
        scripted = scenario.orders[index]
        _step(shop, scripted, scripted.steps.pop(0))
        if not scripted.steps:
            active.remove(index)
        done += 1
        if every and done % every == 0:
            then()
    then()
    return scenario


def _change_catalog(shop: Shop, rng: random.Random) -> None:
    sku = rng.choice(["MUG-1", "TEE-1", "CAP-1", "BOOK-1", "PEN-1"])
    if rng.random() < 0.5:
        shop.do(RestockProduct(sku, rng.randint(1, 50)))
    else:
        price = shop.prices[sku]
        shop.change_price(sku, Money(price.amount + rng.choice([-100, 100, 250]), price.currency))


def _step(shop: Shop, scripted: ScriptedOrder, step: str) -> None:
    if step == "place":
        scripted.placed = shop.place(scripted.customer_id, scripted.lines, scripted.token)
        return
    order = scripted.order
    if step == "cancel":
        by = CancelledBy.CUSTOMER if scripted.fate == "cancelled" else CancelledBy.SYSTEM
        shop.cancel(order, reason=f"{scripted.fate} order", by=by)
    elif step == "refund":
        shop.refund(order, reason=f"{scripted.fate} order")
    elif step == "ship":
        shop.ship(order, tracking_number=f"TRACK-{order.order_id[-6:]}")
    else:
        getattr(shop, step)(order)
