"""A scripted shop: drives the write side through the real command bus, as the
fulfillment saga would, and walks many orders down random fates."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from inventory.commands import (
    AddProduct,
    ChangePrice,
    CommitReservation,
    ReleaseInventory,
    ReservationLine,
    ReserveInventory,
    RestockProduct,
)
from kernel.command_bus import CommandBus
from kernel.messages import Command, new_id
from kernel.money import Money
from kernel.results import Success
from orders.commands import (
    CancelOrder,
    ConfirmOrder,
    OrderLineRequest,
    PlaceOrder,
    RegisterCustomer,
    ShipOrder,
)
from orders.domain import customer_id_for
from orders.events import Address
from payments.commands import ProcessPayment, RefundPayment

ADDRESS = Address("Ada Lovelace", "12 St James's Square", "London", "SW1Y 4JH", "GB")
ADDRESS_DATA = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}

CATALOG = (
    AddProduct("MUG-1", "Enamel mug", Money(1250, "EUR"), 100),
    AddProduct("TEE-1", "Logo T-shirt", Money(1999, "EUR"), 100),
    AddProduct("BOOK-1", "Paperback", Money(1500, "GBP"), 100),
)

BIG_CATALOG = (
    AddProduct("MUG-1", "Enamel mug", Money(1250, "EUR"), 10_000),
    AddProduct("TEE-1", "Logo T-shirt", Money(1999, "EUR"), 10_000),
    AddProduct("CAP-1", "Cap", Money(899, "EUR"), 10_000),
    AddProduct("RARE-1", "Signed print", Money(9900, "EUR"), 5),
    AddProduct("BOOK-1", "Paperback", Money(1500, "GBP"), 10_000),
    AddProduct("PEN-1", "Fountain pen", Money(2400, "GBP"), 10_000),
)
SKUS_BY_CURRENCY = {"EUR": ("MUG-1", "TEE-1", "CAP-1"), "GBP": ("BOOK-1", "PEN-1")}

SHIPPING_FEE = 499
FREE_SHIPPING_FROM = 5000


@dataclass(eq=False)  # one order is one object: usable as a dict key
class PlacedOrder:
    order_id: str
    customer_id: str
    lines: dict[str, int]
    total: Money
    token: str
    consistency_token: str

    @property
    def item_count(self) -> int:
        return sum(self.lines.values())


class Shop:
    """Dispatches commands as the fulfillment saga would; every command must succeed."""

    def __init__(self, bus: CommandBus) -> None:
        self.bus = bus
        self.prices: dict[str, Money] = {}

    def do(self, command: Command) -> Success:
        result = self.bus.dispatch(command)
        assert isinstance(result, Success), f"{command} -> {result}"
        return result

    def add_products(self, products: Sequence[AddProduct]) -> None:
        for product in products:
            self.do(product)
            self.prices[product.sku] = product.price

    def change_price(self, sku: str, price: Money) -> None:
        self.do(ChangePrice(sku, price))
        self.prices[sku] = price

    def customer(self, email: str, name: str = "A Customer") -> str:
        customer_id = customer_id_for(email)
        self.do(RegisterCustomer(customer_id, email, name))
        return customer_id

    def place(
        self, customer_id: str, lines: dict[str, int], token: str = "tok_visa"
    ) -> PlacedOrder:
        order_id = new_id()
        requested = tuple(OrderLineRequest(sku, quantity) for sku, quantity in lines.items())
        done = self.do(PlaceOrder(order_id, customer_id, requested, ADDRESS, token))
        return PlacedOrder(
            order_id, customer_id, dict(lines), self.quote(lines), token, done.consistency_token
        )

    def quote(self, lines: dict[str, int]) -> Money:
        currency = self.prices[next(iter(lines))].currency
        subtotal = sum(self.prices[sku].amount * quantity for sku, quantity in lines.items())
        fee = 0 if subtotal >= FREE_SHIPPING_FROM else SHIPPING_FEE
        return Money(subtotal + fee, currency)

    def reserve(self, order: PlacedOrder) -> None:
        lines = tuple(ReservationLine(sku, quantity) for sku, quantity in order.lines.items())
        self.do(ReserveInventory(order.order_id, lines))

    def pay(self, order: PlacedOrder) -> None:
        self.do(ProcessPayment(order.order_id, order.total, order.token))

    def confirm(self, order: PlacedOrder) -> None:
        self.do(ConfirmOrder(order.order_id))

    def cancel(
        self, order: PlacedOrder, reason: str = "changed my mind", by: str = "system"
    ) -> None:
        customer_id = order.customer_id if by == "customer" else None
        self.do(CancelOrder(order.order_id, reason, by, customer_id))

    def ship(self, order: PlacedOrder, tracking_number: str = "TRACK-1") -> None:
        self.do(ShipOrder(order.order_id, tracking_number))

    def commit(self, order: PlacedOrder) -> None:
        self.do(CommitReservation(order.order_id))

    def release(self, order: PlacedOrder) -> None:
        self.do(ReleaseInventory(order.order_id))

    def refund(self, order: PlacedOrder, reason: str = "cancelled after payment") -> None:
        self.do(RefundPayment(order.order_id, reason))


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
        token = "tok_declined" if fate == "declined" else "tok_visa"
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
        by = "customer" if scripted.fate == "cancelled" else "system"
        shop.cancel(order, reason=f"{scripted.fate} order", by=by)
    elif step == "ship":
        shop.ship(order, tracking_number=f"TRACK-{order.order_id[-6:]}")
    else:
        getattr(shop, step)(order)
