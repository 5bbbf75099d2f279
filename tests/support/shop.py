"""The shop the tests drive through the real command bus, as customers, the admin and
the fulfillment saga would, and the customer, address and catalog they use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher

from inventory.commands import (
    AddProduct,
    ChangePrice,
    CommitReservation,
    ReleaseInventory,
    ReservationLine,
    ReserveInventory,
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
from orders.events import Address, CancelledBy
from payments.commands import ProcessPayment, RefundPayment
from payments.provider_calls import ProviderCalls

ADDRESS = Address("Ada Lovelace", "12 St James's Square", "London", "SW1Y 4JH", "GB")
ADDRESS_DATA = {  # ADDRESS as a request body carries it
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

PASSWORD = "correct horse battery staple"
"""The password the test suites register their customers with."""
# Its argon2 hash, made once (making one takes 0.1 s): every customer the Shop registers
# has it.
PASSWORD_HASH = PasswordHasher().hash(PASSWORD)

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
    """Dispatches commands as the API and the fulfillment saga would; every command must
    succeed. It remembers the prices it set, to know what an order costs.

    With `provider` (the application's ProviderCalls), `pay` and `refund` also make the
    provider call at once, as a payments worker would right after the commit; without,
    they only ask for it (PaymentRequested, RefundRequested)."""

    def __init__(self, bus: CommandBus, provider: ProviderCalls | None = None) -> None:
        self.bus = bus
        self.provider = provider
        self.prices: dict[str, Money] = {}

    def do(self, command: Command) -> Success:
        result = self.bus.dispatch(command)
        assert isinstance(result, Success), f"{command} -> {result}"
        return result

    def add_products(self, products: Sequence[AddProduct]) -> None:
        for product in products:
            self.do(product)
            self.prices[product.sku] = product.price

    def add_product(self, sku: str, stock: int, amount: int = 1250, currency: str = "EUR") -> None:
        """A product named "Product <sku>"."""
        self.add_products([AddProduct(sku, f"Product {sku}", Money(amount, currency), stock)])

    def change_price(self, sku: str, price: Money) -> None:
        self.do(ChangePrice(sku, price))
        self.prices[sku] = price

    def customer(self, email: str, name: str = "A Customer") -> str:
        customer_id = new_id()
        self.do(RegisterCustomer(customer_id, email, name, PASSWORD_HASH))
        return customer_id

    def place(
        self,
        customer_id: str,
        lines: Mapping[str, int],
        token: str = "pm_card_visa",
        address: Address = ADDRESS,
    ) -> PlacedOrder:
        order_id = new_id()
        requested = tuple(OrderLineRequest(sku, quantity) for sku, quantity in lines.items())
        done = self.do(PlaceOrder(order_id, customer_id, requested, address, token))
        return PlacedOrder(
            order_id, customer_id, dict(lines), self.quote(lines), token, done.consistency_token
        )

    def quote(self, lines: Mapping[str, int]) -> Money:
        currency = self.prices[next(iter(lines))].currency
        subtotal = sum(self.prices[sku].amount * quantity for sku, quantity in lines.items())
        fee = 0 if subtotal >= FREE_SHIPPING_FROM else SHIPPING_FEE
        return Money(subtotal + fee, currency)

    def reserve(self, order: PlacedOrder) -> None:
        lines = tuple(ReservationLine(sku, quantity) for sku, quantity in order.lines.items())
        self.do(ReserveInventory(order.order_id, lines))

    def pay(self, order: PlacedOrder) -> None:
        self.do(ProcessPayment(order.order_id, order.total, order.token))
        self._call_provider(order)

    def confirm(self, order: PlacedOrder) -> None:
        self.do(ConfirmOrder(order.order_id))

    def cancel(
        self,
        order: PlacedOrder,
        reason: str = "changed my mind",
        by: CancelledBy = CancelledBy.SYSTEM,
    ) -> None:
        customer_id = order.customer_id if by == CancelledBy.CUSTOMER else None
        self.do(CancelOrder(order.order_id, reason, by, customer_id))

    def ship(self, order: PlacedOrder, tracking_number: str = "TRACK-1") -> None:
        self.do(ShipOrder(order.order_id, tracking_number))

    def commit(self, order: PlacedOrder) -> None:
        self.do(CommitReservation(order.order_id))

    def release(self, order: PlacedOrder) -> None:
        self.do(ReleaseInventory(order.order_id))

    def refund(self, order: PlacedOrder, reason: str = "cancelled after payment") -> None:
        self.do(RefundPayment(order.order_id, reason))
        self._call_provider(order)

    def _call_provider(self, order: PlacedOrder) -> None:
        if self.provider is not None:
            answer = self.provider.settle(order.order_id)
            assert "not recorded" not in answer, f"{order.order_id}: {answer}"
