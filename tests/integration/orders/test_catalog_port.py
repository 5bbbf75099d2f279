"""The catalog port prices orders from the catalog read model in one query, and from the
stock items whenever that read model has not applied every event of a SKU."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from config.adapters import InventoryCatalog
from config.bootstrap import Application
from inventory.commands import ChangePrice
from kernel.messages import Metadata
from kernel.money import Money
from kernel.results import Success
from kernel.unit_of_work import UnitOfWork
from orders.ports import CatalogEntry


def describe(application: Application, *skus: str) -> tuple[Mapping[str, CatalogEntry], int]:
    """The entries, and how many statements it took (on the driver: the unit of work's
    loads skip SQLAlchemy)."""
    executed: list[object] = []
    execute = psycopg.Cursor.execute

    with application.engine.begin() as conn:
        driver = conn.connection.driver_connection

        def noted(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
            if cursor.connection is driver:
                executed.append(query)
            return execute(cursor, query, *args, **kwargs)

        psycopg.Cursor.execute = noted  # type: ignore[method-assign,assignment]
        try:
            uow = UnitOfWork(conn, application.store, Metadata())
            entries = InventoryCatalog().describe(uow, skus)
        finally:
            psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    return entries, len(executed)


def test_known_skus_come_from_one_query_and_unknown_ones_are_left_out(
    application: Application,
) -> None:
    entries, statements = describe(application, "MUG-1", "BOOK-1", "NOPE-1", "MUG-1")

    assert entries == {
        "MUG-1": CatalogEntry("MUG-1", "Enamel mug", Money(1250, "EUR")),
        "BOOK-1": CatalogEntry("BOOK-1", "Paperback", Money(1500, "GBP")),
    }
    assert statements == 1


def test_a_new_price_is_the_price(application: Application) -> None:
    assert isinstance(application.bus.dispatch(ChangePrice("MUG-1", Money(990, "EUR"))), Success)

    entries, _ = describe(application, "MUG-1")

    assert entries["MUG-1"].unit_price == Money(990, "EUR")


@pytest.mark.parametrize(
    "lag",
    [
        "UPDATE catalog_products SET price_amount = 1, stream_version = stream_version - 1"
        " WHERE sku = 'MUG-1'",
        "DELETE FROM catalog_products WHERE sku = 'MUG-1'",
    ],
    ids=["behind", "missing"],
)
def test_a_sku_the_read_model_has_not_caught_up_with_is_read_from_its_stock_item(
    application: Application, lag: str
) -> None:
    with application.engine.begin() as conn:
        conn.execute(text(lag))

    entries, statements = describe(application, "MUG-1", "TEE-1")

    assert entries == {
        "MUG-1": CatalogEntry("MUG-1", "Enamel mug", Money(1250, "EUR")),
        "TEE-1": CatalogEntry("TEE-1", "Logo T-shirt", Money(1999, "EUR")),
    }
    assert statements == 2  # the query, then the one stock item


def test_the_active_generation_is_read(application: Application) -> None:
    with application.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO catalog_products (generation, sku, name, price_amount, currency,"
                " on_hand, available, stream_version, updated_at)"
                " SELECT 7, sku, 'stale copy', 1, currency, on_hand, available, stream_version,"
                " updated_at FROM catalog_products WHERE sku = 'MUG-1'"
            )
        )

    entries, _ = describe(application, "MUG-1")

    assert entries["MUG-1"].name == "Enamel mug"
