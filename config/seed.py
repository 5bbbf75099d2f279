"""The demo catalog and pricing rules `shop seed` and `shop run` add."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from inventory.commands import AddProduct
from kernel.command_bus import CommandBus
from kernel.messages import Command, Metadata
from kernel.money import Money
from pricing.commands import CreateCoupon, CreatePromotion, SetTaxRate

DEMO_CATALOG = (
    ("MUG-001", "Stoneware mug", 1200, 40),
    ("TEE-BLK-M", "Black T-shirt, M", 2500, 25),
    ("TEE-BLK-L", "Black T-shirt, L", 2500, 25),
    ("BOOK-CQRS", "Designing event-driven systems", 3900, 10),
    ("PEN-STEEL", "Steel ballpoint pen", 800, 100),
    ("LAMP-DESK", "Desk lamp", 5900, 5),
    ("NOTE-A5", "A5 dotted notebook", 1500, 60),
    ("LAST-ONE", "Signed poster (last one)", 9900, 1),
)

# Fixed command ids make seeding idempotent: a second run changes nothing.
_SEED = uuid.UUID("6f1d2f4e-7c1a-4b5e-9a57-2f0d8c1e9b31")


def seed_catalog(bus: CommandBus, currency: str = "EUR") -> list[str]:
    """Add the demo products that are missing; returns the SKUs the catalog holds."""
    present = []
    for sku, name, price, stock in DEMO_CATALOG:
        command = AddProduct(sku, name, Money(price, currency), stock)
        metadata = Metadata(message_id=str(uuid.uuid5(_SEED, sku)), actor="seed")
        result = bus.dispatch(command, metadata)
        if result.ok or result.code == "product_exists":
            present.append(sku)
    return present


# Destinations' tax, as data: most of Europe shows prices with tax, the US without (a
# state-less 0 %: US sales tax is the state's, and this demo ships to no state in
# particular).
DEMO_TAX_RATES = (
    ("DE", 1900, True),
    ("FR", 2000, True),
    ("GB", 2000, True),
    ("NL", 2100, True),
    ("US", 0, False),
)
DEMO_PROMOTION = CreatePromotion(
    promotion_id="demo-mugs-and-notebooks",
    description="Mugs and notebooks 15 % off",
    starts_at=datetime(2026, 1, 1, tzinfo=UTC),
    percent_bp=1500,
    skus=("MUG-001", "NOTE-A5"),
)
DEMO_COUPON = CreateCoupon(
    code="WELCOME10", description="10 % off your first order", usage_limit=1000, percent_bp=1000
)


def seed_pricing(bus: CommandBus) -> list[str]:
    """Set the demo tax rates, start the demo promotion and create the WELCOME10 coupon,
    where missing; returns what the pricing context holds of them."""
    named: list[tuple[str, Command]] = [
        (f"tax {country}", SetTaxRate(country, rate_bp, inclusive))
        for country, rate_bp, inclusive in DEMO_TAX_RATES
    ]
    named += [
        (f"promotion {DEMO_PROMOTION.promotion_id}", DEMO_PROMOTION),
        (f"coupon {DEMO_COUPON.code}", DEMO_COUPON),
    ]
    present = []
    for name, command in named:
        metadata = Metadata(message_id=str(uuid.uuid5(_SEED, name)), actor="seed")
        result = bus.dispatch(command, metadata)
        if result.ok or result.code in ("promotion_exists", "coupon_exists"):
            present.append(name)
    return present
