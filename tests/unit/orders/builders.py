"""Events and catalog entries for given/when/then tests of the order aggregate."""

from __future__ import annotations

from kernel.money import Money
from orders.events import OrderPlaced, PricedLine
from orders.ports import CatalogEntry
from tests.support.shop import ADDRESS

ORDER = "order-1"
CUSTOMER = "customer-1"


def eur(amount: int) -> Money:
    return Money(amount, "EUR")


CATALOG = {
    "MUG": CatalogEntry("MUG", "Enamel mug", eur(1250)),
    "TEE": CatalogEntry("TEE", "Logo T-shirt", eur(1999)),
    "LAMP": CatalogEntry("LAMP", "Desk lamp", eur(4999)),
    "BOOK": CatalogEntry("BOOK", "Paperback", Money(1500, "GBP")),
}


def placed(order_id: str = ORDER, customer_id: str = CUSTOMER) -> OrderPlaced:
    line = PricedLine("MUG", "Enamel mug", 2, eur(1250), eur(2500), eur(0), eur(0), eur(2500))
    return OrderPlaced(
        order_id=order_id,
        customer_id=customer_id,
        lines=(line,),
        subtotal=eur(2500),
        shipping=eur(499),
        total=eur(2999),
        shipping_address=ADDRESS,
        payment_token="pm_card_visa",
        discounts=(),
        discount_total=eur(0),
        taxes=(),
        tax_total=eur(0),
        billing_address=ADDRESS,
    )
