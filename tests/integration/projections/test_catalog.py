from __future__ import annotations

from datetime import datetime
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import text

from config.bootstrap import Application
from inventory.commands import AddProduct, RestockProduct
from kernel.money import Money
from tests.support.read_models import contents
from tests.support.shop import CATALOG, Shop


def _recorded_at(application: Application, sku: str) -> datetime:
    with application.engine.connect() as conn:
        found: datetime = conn.execute(
            text("SELECT max(recorded_at) FROM events WHERE stream_id = :stream"),
            {"stream": f"stock_item-{sku}"},
        ).scalar_one()
        return found


def test_the_catalog_shows_price_and_stock_as_each_inventory_command_commits(
    application: Application, shop: Shop, client: FlaskClient
) -> None:
    shop.add_products([*CATALOG, AddProduct("RARE-1", "Signed print", Money(9900, "EUR"), 2)])
    ada = shop.customer("ada@example.com")
    shipped = shop.place(ada, {"MUG-1": 2, "TEE-1": 1})
    shop.reserve(shipped)
    shop.pay(shipped)
    shop.confirm(shipped)
    shop.ship(shipped)
    shop.commit(shipped)  # MUG-1: 98 on hand, TEE-1: 99
    released = shop.place(ada, {"MUG-1": 5})
    shop.reserve(released)
    shop.release(released)  # MUG-1 stock back to 98 available
    held = shop.place(ada, {"TEE-1": 3, "RARE-1": 2})
    shop.reserve(held)  # TEE-1: 96 available of 99, RARE-1: none left
    shop.do(RestockProduct("BOOK-1", 20))
    shop.change_price("BOOK-1", Money(1750, "GBP"))

    # Synchronous: no runner has run, yet every change is there.
    versions = {"BOOK-1": 3, "MUG-1": 5, "RARE-1": 2, "TEE-1": 4}
    rows = [
        ("BOOK-1", "Paperback", 1750, "GBP", 120, 120),
        ("MUG-1", "Enamel mug", 1250, "EUR", 98, 98),
        ("RARE-1", "Signed print", 9900, "EUR", 2, 0),
        ("TEE-1", "Logo T-shirt", 1999, "EUR", 99, 96),
    ]
    assert contents(application, "catalog", 1) == {
        "catalog_products": [
            {
                "sku": sku,
                "name": name,
                "price_amount": amount,
                "currency": currency,
                "on_hand": on_hand,
                "available": available,
                "stream_version": versions[sku],
                "updated_at": _recorded_at(application, sku),
            }
            for sku, name, amount, currency, on_hand, available in rows
        ]
    }

    response = client.get("/api/products")
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    assert body["items"] == [
        {
            "sku": sku,
            "name": name,
            "price": {"amount": amount, "currency": currency},
            "available": available,
            "in_stock": available > 0,
        }
        for sku, name, amount, currency, _, available in rows
    ]
    assert body["read_model"] == {
        "name": "catalog",
        "lag_events": 0,
        "lag_seconds": 0.0,
        "stale": False,
    }
    assert response.headers["X-Read-Model-Lag"] == "0"
