"""The demo catalog `shop seed` and `shop run` add."""

from __future__ import annotations

import uuid

from inventory.commands import AddProduct
from kernel.command_bus import CommandBus
from kernel.messages import Metadata
from kernel.money import Money

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
