"""An operator's tour of the dashboard in real Chromium, against the real API
(gunicorn) and a real RQ worker: sign in, watch placed orders arrive, read one
order's history, check the sales chart, rebuild a read model, restock a product,
then act on orders (ship, refund, cancel, each confirmed first), read who did what on
the Audit page (signed in again as a named admin), search and page the orders list both
ways.

The tests run in file order on one browser tab and one shop.
"""

from __future__ import annotations

import re
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from prometheus_client.parser import text_string_to_metric_families

from config.bootstrap import Application
from config.settings import Settings
from tests.browser.conftest import Stack, screenshot
from tests.support.api_client import ApiClient, Customer
from tests.support.polling import eventually

PRODUCTS = (
    ("MUG-001", "Stoneware mug", 1200, 40),
    ("TEE-BLK-M", "Black T-shirt, M", 2500, 25),
    ("LAMP-DESK", "Desk lamp", 5900, 5),
)
NAMES = {"ada@example.com": "Ada Lovelace", "grace@example.com": "Grace Hopper"}
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
            customers[email] = api.register(email, NAMES[email])
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
    expect(page.get_by_role("alert")).to_have_text("That is not an admin token.")
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
    grace = page.locator(f"tr[data-order-id='{placed[1]}'] td.customer")
    expect(grace.locator("[data-customer-name]")).to_have_text("Grace Hopper")
    expect(grace.locator("[data-customer-email]")).to_have_text("grace@example.com")


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
    actions = page.locator("[data-actions] form[data-action]")
    expect(actions).to_have_count(3)
    assert [form.get_attribute("data-action") for form in actions.all()] == [
        "ship",
        "cancel",
        "refund",
    ]
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

    # A confirmation first: going back starts nothing.
    expect(page.locator("[data-confirm-step=rebuild] h1")).to_have_text("Rebuild order_detail?")
    page.locator("[data-confirm-step=rebuild] [data-back]").click()
    expect(page).to_have_url(re.compile(r"/admin/projections$"))
    row = page.locator("tr[data-subscription='order_detail']")
    expect(row.locator("button[data-rebuild]")).to_be_visible()
    row.locator("button[data-rebuild]").click()
    page.locator("button[data-confirm=rebuild]").click()

    expect(page.locator(".flash")).to_have_text("Rebuilding order_detail into generation 2.")
    screenshot(page, "projections-rebuilding")
    row = page.locator("tr[data-subscription='order_detail']")
    expect(row.locator("[data-generation]")).to_have_text("2", timeout=30_000)
    expect(row.locator("[data-subscription-name]")).to_have_text("order_detail@2")
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

    page.locator("[data-back-to-shop]").click()  # and back to the shop's pages

    expect(page).to_have_url(re.compile(r"/admin/orders$"))
    expect(page.locator("h1")).to_have_text("Orders")


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


# After the metrics: from here on the shop changes (orders shipped, refunded, cancelled
# and placed), which the figures above do not count.


def _act(page: Page, order_id: str, action: str, value: str) -> None:
    """Fill the action's form on the order's page and send it to its confirmation."""
    page.goto(f"/admin/orders/{order_id}")
    form = page.locator(f"form[data-action={action}]")
    form.locator("input[name=tracking_number], input[name=reason]").fill(value)
    form.locator("button").click()
    expect(page.locator(f"[data-confirm-step={action}]")).to_be_visible()


def test_shipping_an_order_after_confirming(page: Page, placed: list[str]) -> None:
    _act(page, placed[0], "ship", "1Z999AA10123456784")
    expect(page.locator("[data-confirm-step=ship] dd").last).to_have_text("1Z999AA10123456784")
    screenshot(page, "order-confirm")

    page.locator("button[data-confirm=ship]").click()

    short = placed[0][:8]
    expect(page.locator(".flash")).to_have_text(
        f"Order {short} shipped with tracking number 1Z999AA10123456784."
    )
    expect(page.locator("[data-status]")).to_have_text("shipped", timeout=30_000)
    actions = page.locator("[data-actions] form[data-action]")
    expect(actions).to_have_count(1)
    expect(actions).to_have_attribute("data-action", "refund")


def test_refunding_the_shipped_order_after_confirming(page: Page, placed: list[str]) -> None:
    _act(page, placed[0], "refund", "sent back")
    expect(page.locator("[data-confirm-step=refund] .notice")).to_contain_text("stays shipped")

    page.locator("button[data-confirm=refund]").click()

    expect(page.locator(".flash")).to_contain_text(f"Refund of order {placed[0][:8]} asked for")
    # The payments worker refunds at Stripe; the page reloads itself until it shows.
    expect(page.locator("[data-status]")).to_have_text("refunded", timeout=30_000)
    expect(page.locator("[data-payment]")).to_have_text("refunded")
    expect(page.locator(".timeline li").last).to_contain_text("payment refunded")
    expect(page.locator("[data-no-actions]")).to_be_visible()


def test_cancelling_an_order_after_confirming_or_not(page: Page, placed: list[str]) -> None:
    _act(page, placed[2], "cancel", "customer called")
    page.locator("[data-confirm-step=cancel] [data-back]").click()  # not after all
    expect(page.locator("[data-status]")).to_have_text("confirmed")

    _act(page, placed[2], "cancel", "customer called")
    page.locator("button[data-confirm=cancel]").click()

    expect(page.locator(".flash")).to_contain_text(f"Order {placed[2][:8]} cancelled")
    expect(page.locator("[data-status]")).to_have_text("cancelled", timeout=30_000)
    # The saga refunds the payment taken.
    expect(page.locator("[data-payment]")).to_have_text("refunded", timeout=30_000)

    page.goto("/admin/orders")
    statuses = {
        order_id: page.locator(f"tr[data-order-id='{order_id}'] .status") for order_id in placed
    }
    expect(statuses[placed[0]]).to_have_text("refunded")
    expect(statuses[placed[1]]).to_have_text("confirmed")
    expect(statuses[placed[2]]).to_have_text("cancelled")
    screenshot(page, "orders")


def test_the_audit_page_names_the_admin_of_each_action(
    page: Page, api: ApiClient, application: Application, placed: list[str]
) -> None:
    _, token = application.admins.create("ada.ops", "operator", "cli:browser-test")
    named = {"Authorization": f"Bearer {token}"}
    reply = api("POST", "/admin/api/products/LAMP-DESK/restock", {"quantity": 5}, named)
    assert reply.status == 202, reply.body
    page.goto("/admin/orders")
    page.click(".logout button")  # then in as ada.ops
    page.fill("#token", token)
    page.click("button[type=submit]")
    expect(page.locator("[data-signed-in]")).to_contain_text("ada.ops operator")

    page.goto("/admin/audit")

    rows = page.locator("tr[data-audit]")
    expect(rows.first).to_have_attribute("data-audit", "StockReplenished")
    expect(rows.first.locator("[data-actor]")).to_have_text("ada.ops")
    shipped = page.locator("tr[data-audit=OrderShipped]")
    expect(shipped.locator("[data-actor]")).to_have_text("the bootstrap admin (ADMIN_TOKEN)")
    expect(shipped.locator("a[data-order]")).to_have_attribute("data-order", placed[0])
    screenshot(page, "audit")


def test_searching_by_email_or_order_id(page: Page, placed: list[str]) -> None:
    page.goto("/admin/orders")
    page.fill("input[name=q]", "Grace@example.com")
    page.click(".filters button[type=submit]")

    expect(page.locator("tr[data-order-id]")).to_have_count(1)
    expect(page.locator("tr[data-order-id]")).to_have_attribute("data-order-id", placed[1])

    page.fill("input[name=q]", placed[2])
    page.click(".filters button[type=submit]")

    expect(page.locator("tr[data-order-id]")).to_have_count(1)
    expect(page.locator("tr[data-order-id]")).to_have_attribute("data-order-id", placed[2])


def test_paging_older_and_back_newer(page: Page, api: ApiClient, placed: list[str]) -> None:
    lin = api.register("lin@example.com", "Lin Chen")
    more = []
    for _ in range(23):  # 26 orders: a page of 25, and one older
        reply = api.place(lin.headers, {"MUG-001": 1})
        assert reply.status == 202, reply.body
        more.append(reply.body["order_id"])
    page.goto("/admin/orders")
    rows = page.locator("tr[data-order-id]")
    expect(rows).to_have_count(25, timeout=30_000)
    expect(page.locator("[data-page=newer]")).to_have_count(0)

    page.click("[data-page=older]")

    expect(rows).to_have_count(1)
    expect(rows).to_have_attribute("data-order-id", placed[0])
    expect(page.locator("[data-page=older]")).to_have_count(0)
    page.click("[data-page=newer]")

    expect(rows).to_have_count(25)
    assert rows.first.get_attribute("data-order-id") == more[-1]
    assert rows.last.get_attribute("data-order-id") == placed[1]
    expect(page.locator("[data-page=newer]")).to_have_count(0)
    expect(page.locator("[data-page=older]")).to_be_visible()
