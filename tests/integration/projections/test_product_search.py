"""The storefront's product detail and search, from the catalog read model: filters by
name or SKU, stock and price, keyset pages by SKU, and every bad parameter a 422 problem
naming its field."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from config.bootstrap import Application
from inventory.commands import AddProduct
from kernel.money import Money
from pricing.commands import SetTaxRate
from tests.support.shop import Shop

PRODUCTS = (
    AddProduct("MUG-1", "Enamel mug", Money(1250, "EUR"), 10),
    AddProduct("MUG-2", "Tall mug", Money(1500, "EUR"), 0),
    AddProduct("TEE-1", "Logo T-shirt", Money(1999, "EUR"), 5),
    AddProduct("BOOK-1", "Paperback", Money(1999, "GBP"), 3),
    AddProduct("LAMP-1", "100% brass lamp", Money(8900, "EUR"), 1),
    AddProduct("CUP-1", "Espresso cup_small", Money(600, "EUR"), 0),
)


def _skus(client: FlaskClient, query: str) -> list[str]:
    response = client.get(f"/api/products?{query}")
    assert response.status_code == 200, response.get_json()
    return [item["sku"] for item in response.get_json()["items"]]


def test_one_product_reads_with_its_price_and_stock_and_an_unknown_one_is_a_404(
    application: Application, shop: Shop, client: FlaskClient
) -> None:
    shop.add_products(PRODUCTS)

    response = client.get("/api/products/MUG-1")
    assert response.status_code == 200
    body = response.get_json()
    assert body["product"] == {
        "sku": "MUG-1",
        "name": "Enamel mug",
        "price": {"amount": 1250, "currency": "EUR"},
        "available": 10,
        "in_stock": True,
    }  # no destination asked: no shelf price
    assert body["read_model"]["name"] == "catalog"
    sold_out = client.get("/api/products/MUG-2").get_json()["product"]
    assert (sold_out["available"], sold_out["in_stock"]) == (0, False)

    for unknown in ("NOPE-1", "mug-1", "x", "MUG%00-1"):
        missing = client.get(f"/api/products/{unknown}")
        assert missing.status_code == 404, unknown
        assert missing.content_type == "application/problem+json"


def test_the_list_filters_by_name_or_sku_stock_and_price(
    application: Application, shop: Shop, client: FlaskClient
) -> None:
    shop.add_products(PRODUCTS)

    everything = client.get("/api/products").get_json()
    assert [item["sku"] for item in everything["items"]] == [
        "BOOK-1", "CUP-1", "LAMP-1", "MUG-1", "MUG-2", "TEE-1",
    ]  # fmt: skip
    assert everything["next_cursor"] is None
    assert set(everything["items"][0]) == {"sku", "name", "price", "available", "in_stock"}

    assert _skus(client, "q=MUG") == ["MUG-1", "MUG-2"]  # the name and the SKU, any case
    assert _skus(client, "q=mug") == ["MUG-1", "MUG-2"]
    assert _skus(client, "q=shirt") == ["TEE-1"]
    assert _skus(client, "q=k-1") == ["BOOK-1"]
    assert _skus(client, "q=%25") == ["LAMP-1"]  # `%` and `_` match only themselves
    assert _skus(client, "q=_") == ["CUP-1"]
    assert _skus(client, "q=nothing-like-it") == []
    assert _skus(client, "in_stock=true") == ["BOOK-1", "LAMP-1", "MUG-1", "TEE-1"]
    assert _skus(client, "in_stock=false") == ["CUP-1", "MUG-2"]
    assert _skus(client, "min_price=1500") == ["BOOK-1", "LAMP-1", "MUG-2", "TEE-1"]
    assert _skus(client, "max_price=1500") == ["CUP-1", "MUG-1", "MUG-2"]
    # Filters combine: MUG-2 is a mug in the range, but sold out.
    assert _skus(client, "min_price=1250&max_price=1999&in_stock=true&q=mug") == ["MUG-1"]


def test_the_list_pages_by_sku_with_a_cursor_and_never_repeats_or_skips(
    application: Application, shop: Shop, client: FlaskClient
) -> None:
    shop.add_products(PRODUCTS)

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = (
            "limit=4&in_stock=true" if cursor is None else f"limit=4&in_stock=true&cursor={cursor}"
        )
        body: dict[str, Any] = client.get(f"/api/products?{query}").get_json()
        seen += [item["sku"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert cursor == seen[-1]
    assert (pages, seen) == (1, ["BOOK-1", "LAMP-1", "MUG-1", "TEE-1"])

    first = client.get("/api/products?limit=2").get_json()
    assert ([i["sku"] for i in first["items"]], first["next_cursor"]) == (
        ["BOOK-1", "CUP-1"],
        "CUP-1",
    )
    second = client.get("/api/products?limit=2&cursor=CUP-1").get_json()
    assert ([i["sku"] for i in second["items"]], second["next_cursor"]) == (
        ["LAMP-1", "MUG-1"],
        "MUG-1",
    )
    last = client.get("/api/products?limit=2&cursor=MUG-1").get_json()
    assert ([i["sku"] for i in last["items"]], last["next_cursor"]) == (["MUG-2", "TEE-1"], None)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("in_stock=maybe", "in_stock"),
        ("min_price=-1", "min_price"),
        ("min_price=1.5", "min_price"),
        ("max_price=abc", "max_price"),
        ("min_price=2000&max_price=1000", "max_price"),
        ("q=", "q"),
        ("q=a%00b", "q"),
        (f"q={'x' * 101}", "q"),
        ("cursor=lower-case", "cursor"),
        ("cursor=", "cursor"),
    ],
)
def test_a_bad_search_parameter_is_a_422_problem_naming_it(
    client: FlaskClient, query: str, field: str
) -> None:
    response = client.get(f"/api/products?{query}")
    assert response.status_code == 422, response.get_json()
    assert response.content_type == "application/problem+json"
    assert field in response.get_json()["errors"]


def test_a_destination_shows_each_price_with_its_tax_or_net_as_its_storefronts_do(
    application: Application, shop: Shop, client: FlaskClient
) -> None:
    shop.add_products(PRODUCTS)
    shop.do(SetTaxRate("DE", 1900, True))  # shown with tax
    shop.do(SetTaxRate("US", 725, False))  # shown without

    def shelf(query: str) -> dict[str, Any]:
        response = client.get(f"/api/products/TEE-1?{query}")
        assert response.status_code == 200, response.get_json()
        shown: dict[str, Any] = response.get_json()["product"]["shelf_price"]
        return shown

    # 19.99 + 19 % = 23.7881: the tax, 3.7981, rounds half up to 3.80.
    assert shelf("country=DE") == {
        "amount": 2379, "currency": "EUR", "includes_tax": True, "tax_rate_bp": 1900,
        "tax": {"amount": 380, "currency": "EUR"},
    }  # fmt: skip
    us = shelf("country=US")  # 1.449...: 1.45, not in the shelf price
    assert (us["amount"], us["includes_tax"], us["tax"]["amount"]) == (1999, False, 145)
    assert shelf("country=JP")["amount"] == 1999  # no rate: untaxed
    listed = client.get("/api/products?country=DE&q=mug").get_json()["items"]
    assert {item["sku"]: item["shelf_price"]["amount"] for item in listed} == {
        "MUG-1": 1488,  # 12.50 + 2.375 -> 2.38
        "MUG-2": 1785,
    }
    bad = client.get("/api/products?country=de")
    assert bad.status_code == 422 and list(bad.get_json()["errors"]) == ["country"]
