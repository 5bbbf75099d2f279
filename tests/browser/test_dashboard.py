"""An operator's tour of the dashboard in real Chromium, against the real API
(gunicorn) and a real RQ worker: sign in, watch placed orders arrive, read one
order's history, check the sales chart, rebuild a read model, restock a product.

The tests run in file order on one browser tab and one shop.
"""

from __future__ import annotations

import re
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from prometheus_client.parser import text_string_to_metric_families

from config.settings import Settings
from tests.browser.conftest import Stack, screenshot
from tests.support.api_client import ApiClient, Customer
from tests.support.polling import eventually

PRODUCTS = (
    ("MUG-001", "Stoneware mug", 1200, 40),
    ("TEE-BLK-M", "Black T-shirt, M", 2500, 25),
    ("LAMP-DESK", "Desk lamp", 5900, 5),
)
ORDERS = (  # (customer, lines)
    ("ada@example.com", {"MUG-001": 2}),
    ("grace@example.com", {"TEE-BLK-M": 1, "MUG-001": 1}),
    ("ada@example.com", {"LAMP-DESK": 1}),
)


@pytest.fixture(scope="module")
def api(stack: Stack, settings: Settings) -> ApiClient:
    return ApiClient(stack.base_url, settings.admin_token or "")


@pytest.fixture(scope="module")
def placed(api: ApiClient) -> list[str]:
    """The catalog and three paid orders, through the HTTP API."""
    for sku, name, amount, stock in PRODUCTS:
        api.add_product(sku, stock=stock, amount=amount, name=name)
    customers: dict[str, Customer] = {}
    order_ids = []
    for email, lines in ORDERS:
        if email not in customers:
            customers[email] = api.register(email, email.split("@")[0])
        reply = api.place(customers[email].headers, lines)
        assert reply.status == 202, reply.body
        order_ids.append(reply.body["order_id"])
    return order_ids


def confirmed_totals(api: ApiClient, order_ids: list[str]) -> int:
    """The orders' totals once the saga has confirmed them all (admin JSON API)."""
    totals: dict[str, int] = {}

    def all_confirmed() -> None:
        for order_id in order_ids:
            reply = api("GET", f"/admin/api/orders/{order_id}", headers=api.admin)
            assert reply.status == 200, reply.body
            order = reply.body["order"]
            assert order["status"] == "confirmed", order["status"]
            totals[order_id] = order["total"]["amount"]

    eventually(all_confirmed, timeout=30, interval=0.2)
    return sum(totals.values())


def test_signing_in_with_the_admin_token(page: Page, settings: Settings) -> None:
    page.goto("/admin/orders")

    expect(page).to_have_url(re.compile(r"/admin/login\?next="))
    page.fill("#token", "wrong-token")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_have_text("That is not the admin token.")
    screenshot(page, "login")
    page.fill("#token", settings.admin_token or "")
    page.click("button[type=submit]")

    expect(page).to_have_url(re.compile(r"/admin/orders$"))
    expect(page.locator("h1")).to_have_text("Orders")


def test_placed_orders_appear_on_the_orders_page_by_themselves(
    page: Page, placed: list[str]
) -> None:
    page.goto("/admin/orders")

    rows = page.locator("tr[data-order-id]")
    expect(rows).to_have_count(3)  # the page reloads itself every 5 s until they are there
    assert [row.get_attribute("data-order-id") for row in rows.all()] == placed[::-1]
    expect(page.locator("tr[data-order-id] .status.confirmed")).to_have_count(3, timeout=30_000)
    expect(page.locator(".freshness")).to_contain_text("order_list")
    screenshot(page, "orders")


def test_an_order_shows_its_event_history_and_causes(page: Page, placed: list[str]) -> None:
    page.goto("/admin/orders")
    page.click(f"tr[data-order-id='{placed[1]}'] a >> nth=0")

    expect(page).to_have_url(re.compile(placed[1]))
    expect(page.locator("[data-status]")).to_have_text("confirmed")
    events = page.locator("tr[data-event-type]")
    expect(events.first).to_have_attribute("data-event-type", "OrderPlaced")
    for event_type in (
        "InventoryReserved",
        "PaymentRequested",
        "PaymentSucceeded",
        "OrderConfirmed",
    ):
        expect(page.locator(f"tr[data-event-type='{event_type}']")).to_have_count(1)
    reserved = page.locator("tr[data-event-type='InventoryReserved'] td.cause")
    expect(reserved).to_contain_text("by the saga, reacting to")
    reserved.locator("a").click()  # to the OrderPlaced that led to it
    expect(page).to_have_url(re.compile(r"#event-\d+$"))
    expect(page.locator("tr:target")).to_have_attribute("data-event-type", "OrderPlaced")
    screenshot(page, "order")


def test_the_sales_chart_adds_up_to_the_orders_placed(
    page: Page, api: ApiClient, placed: list[str]
) -> None:
    expected = confirmed_totals(api, placed)

    def sales_caught_up() -> None:
        page.goto("/admin/sales")
        assert page.locator("[data-total=orders]").inner_text() == "3"

    eventually(sales_caught_up, timeout=30, interval=0.5)

    revenue = page.locator("[data-total=revenue]").inner_text()
    assert revenue == f"{expected // 100:,}.{expected % 100:02d} EUR"
    bars = page.locator("svg.chart g.bar")
    expect(bars).to_have_count(14)
    amounts = [int(bar.get_attribute("data-revenue") or 0) for bar in bars.all()]
    assert amounts[-1] == expected and sum(amounts) == expected
    assert (page.locator("svg.chart rect").last.bounding_box() or {"height": 0})["height"] > 100
    expect(page.locator("table.top tbody tr")).to_have_count(3)
    screenshot(page, "sales")


def test_a_rebuild_runs_to_completion_while_the_page_follows_it(page: Page) -> None:
    page.goto("/admin/projections")
    row = page.locator("tr[data-subscription='order_detail']")
    expect(row.locator("[data-generation]")).to_have_text("1")

    row.locator("button[data-rebuild]").click()

    expect(page.locator(".flash")).to_have_text("Rebuilding order_detail into generation 2.")
    screenshot(page, "projections-rebuilding")
    row = page.locator("tr[data-subscription='order_detail']")
    expect(row.locator("[data-generation]")).to_have_text("2", timeout=30_000)
    page.goto("/admin/projections")
    expect(page.locator("tr[data-subscription='order_detail']")).to_have_attribute(
        "data-state", "caught_up", timeout=30_000
    )
    expect(page.locator("tr[data-subscription] [data-error]")).to_have_count(0)
    page.wait_for_timeout(2100)  # lag is sampled at most every 2 s: one more reading
    page.reload()
    expect(page.locator("tr[data-subscription='order_list'] svg.spark")).to_be_visible()
    screenshot(page, "projections")


def test_sagas_and_inventory_pages(page: Page) -> None:
    page.goto("/admin/sagas")
    expect(page.locator("[data-count=completed]")).to_have_text("3")
    expect(page.locator("[data-count=stuck]")).to_have_text("0")
    screenshot(page, "sagas")

    page.goto("/admin/inventory")
    mug = page.locator("tr[data-sku='MUG-001']")
    expect(mug.locator("[data-available]")).to_have_text("37")
    mug.locator("input[name=quantity]").fill("0")
    mug.locator("[data-form=restock] button").click()
    expect(page.locator("tr[data-sku='MUG-001'] [data-field=quantity]")).to_contain_text(
        "greater than or equal to 1"
    )
    page.locator("tr[data-sku='MUG-001'] input[name=quantity]").fill("13")
    page.locator("tr[data-sku='MUG-001'] [data-form=restock] button").click()

    expect(page.locator(".flash")).to_have_text("Restocked MUG-001 by 13.")
    expect(page.locator("tr[data-sku='MUG-001'] [data-on-hand]")).to_have_text("53")
    screenshot(page, "inventory")


def test_rq_dashboard_lists_the_queues_behind_the_same_sign_in(
    page: Page, placed: list[str]
) -> None:
    page.goto("/admin/rq/")

    expect(page.get_by_role("cell", name="shop-sagas", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="shop-projections", exact=True)).to_be_visible()
    # Created with the first charge a saga asked for.
    expect(page.get_by_role("cell", name="shop-payments", exact=True)).to_be_visible()


def test_metrics_add_up_the_api_and_worker_processes(stack: Stack, placed: list[str]) -> None:
    with urllib.request.urlopen(f"{stack.base_url}/metrics", timeout=10) as response:
        exposition = response.read().decode()
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    def counted(name: str, **labels: Any) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    # PlaceOrder ran in gunicorn; the saga's events were appended by the RQ worker, the
    # charges made (and their answers recorded) by the payments worker.
    assert counted("shop_commands_handled_total", command="PlaceOrder") == 3
    assert counted("shop_events_appended_total", event="OrderConfirmed", stream_type="order") == 3
    assert counted("shop_payment_provider_calls_total", call="charge", outcome="succeeded") == 3
    assert counted("shop_commands_handled_total", command="RecordChargeOutcome") == 3
    assert counted("shop_rq_workers") >= 2
