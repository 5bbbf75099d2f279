"""An operator at work in real Chromium, against the real API (gunicorn), a real RQ
worker and the sweep: an order a read model cannot store is parked while the others go
on, and is retried after the fix or skipped with a reason on the Parked page; a saga
stuck waiting on 3-D Secure is cancelled from the Sagas page and says why it was
compensated.

The tests run in file order on one browser tab and one shop.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import text

from config.bootstrap import Application
from config.settings import Settings
from tests.browser.conftest import Stack, screenshot
from tests.support.api_client import ApiClient, Customer
from tests.support.payments import AUTHENTICATION_REQUIRED
from tests.support.polling import eventually

REFUSE = """
CREATE TABLE IF NOT EXISTS browser_refused (customer_id text PRIMARY KEY);
CREATE OR REPLACE FUNCTION browser_refuse_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.customer_id IN (SELECT customer_id FROM browser_refused) THEN
        RAISE EXCEPTION 'order % cannot be stored', NEW.order_id;
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS browser_refuse_order ON order_details;
CREATE TRIGGER browser_refuse_order BEFORE INSERT ON order_details
    FOR EACH ROW EXECUTE FUNCTION browser_refuse_order();
"""
FORGIVE = """
DROP TRIGGER IF EXISTS browser_refuse_order ON order_details;
DROP FUNCTION IF EXISTS browser_refuse_order();
DROP TABLE IF EXISTS browser_refused;
"""


@pytest.fixture(scope="module")
def api(stack: Stack, settings: Settings) -> ApiClient:
    api = ApiClient(stack.base_url, settings.admin_token or "")
    api.add_product("MUG-001", stock=100, amount=1200, name="Stoneware mug")
    return api


@pytest.fixture(scope="module")
def refused(application: Application, api: ApiClient) -> Any:
    """Customers whose orders the order detail read model refuses to store (a bug)."""
    with application.engine.begin() as conn:
        conn.execute(text(REFUSE))
    refused = [api.register(f"refused-{n}@example.com", f"Refused {n}") for n in (1, 2)]
    with application.engine.begin() as conn:
        for customer in refused:
            conn.execute(
                text("INSERT INTO browser_refused VALUES (:id)"), {"id": customer.customer_id}
            )
    yield refused
    with application.engine.begin() as conn:
        conn.execute(text(FORGIVE))


def test_signing_in(page: Page, settings: Settings) -> None:
    page.goto("/admin/login")
    page.fill("#token", settings.admin_token or "")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Orders")


def test_an_order_the_read_model_cannot_store_is_parked_and_the_others_go_on(
    page: Page, api: ApiClient, refused: list[Customer]
) -> None:
    plain = api.register("plain@example.com", "Plain")
    for customer in refused:
        assert api.place(customer.headers, {"MUG-001": 1}).status == 202
    later = [api.place(plain.headers, {"MUG-001": 1}).body["order_id"] for _ in range(4)]

    page.goto("/admin/parked")

    rows = page.locator("tr[data-parked^='order_detail@1/']")
    expect(rows).to_have_count(2, timeout=30_000)  # the page reloads itself
    expect(rows.first).to_contain_text("cannot be stored")
    expect(rows.first.locator("[data-events]")).not_to_have_text("0")

    def the_others_went_on() -> None:
        for order_id in later:
            assert api("GET", f"/api/orders/{order_id}", headers=plain.headers).status == 200

    eventually(the_others_went_on, timeout=30, interval=0.2)
    screenshot(page, "parked")


def test_a_parked_order_is_retried_after_the_fix_and_another_skipped_with_a_reason(
    page: Page, application: Application, api: ApiClient, refused: list[Customer]
) -> None:
    with application.engine.begin() as conn:
        conn.execute(text("DELETE FROM browser_refused WHERE customer_id = :id"),
                     {"id": refused[0].customer_id})  # fmt: skip
    first = _order_of(api, refused[0])
    page.goto("/admin/parked")
    page.locator(f"tr[data-parked='order_detail@1/{first}'] [data-action=retry]").click()

    expect(page.locator(".flash.ok")).to_contain_text(f"parked event(s) of {first}")
    expect(page.locator(f"tr[data-parked='order_detail@1/{first}']")).to_have_count(0)
    shown = api("GET", f"/api/orders/{first}", headers=refused[0].headers)
    assert shown.status == 200, shown.body

    second = _order_of(api, refused[1])
    row = page.locator(f"tr[data-parked='order_detail@1/{second}']")
    row.locator("summary", has_text="Skip").click()
    row.locator("input[name=reason]").fill("test account, never a real order")
    row.locator("[data-action=skip]").click()

    expect(page.locator(".flash.ok")).to_contain_text("Skipped")
    expect(page.locator("tr[data-parked]")).to_have_count(0)
    expect(page.locator("td.empty")).to_have_text("Nothing is parked.")


def test_a_stuck_saga_is_cancelled_from_the_sagas_page_and_says_why(
    page: Page, application: Application, api: ApiClient
) -> None:
    customer = api.register("slow@example.com", "Slow Payer")
    reply = api.place(customer.headers, {"MUG-001": 2}, token=AUTHENTICATION_REQUIRED)
    order_id = reply.body["order_id"]

    def paying() -> None:
        with application.engine.connect() as conn:
            step = conn.execute(
                text("SELECT step FROM order_fulfillment_sagas WHERE order_id = :id"),
                {"id": order_id},
            ).scalar()
        assert step == "paying", step

    eventually(paying, timeout=30, interval=0.2)
    with application.engine.begin() as conn:  # as if its deadline job had been lost
        conn.execute(
            text("UPDATE order_fulfillment_sagas SET step_entered_at = now() - interval '1 hour'"
                 " WHERE order_id = :id"), {"id": order_id},
        )  # fmt: skip
    page.goto("/admin/sagas")
    stuck = page.locator("h2", has_text="Stuck").locator("xpath=following-sibling::table[1]")
    row = stuck.locator(f"tr[data-saga='{order_id}']")
    expect(row).to_contain_text("paying")
    expect(row.locator("[data-at-step]")).to_contain_text("min")
    screenshot(page, "sagas-stuck")

    row.locator("summary", has_text="Cancel").click()
    row.locator("input[name=reason]").fill("customer asked by phone")
    row.locator("[data-action=cancel-saga]").click()
    page.locator("[data-confirm=cancel]").click()  # the order's cancel, confirmed

    expect(page.locator(".flash.ok")).to_contain_text("cancelled")
    compensated = page.locator("h2", has_text="Compensated").locator(
        "xpath=following-sibling::table[1]"
    )

    def compensated_with_why() -> None:
        page.goto("/admin/sagas")
        cell = compensated.locator(f"tr[data-saga='{order_id}'] [data-compensation]")
        assert cell.inner_text() == "cancelled by admin: customer asked by phone"

    eventually(compensated_with_why, timeout=30, interval=0.5)
    expect(page).to_have_url(re.compile(r"/admin/sagas$"))


def _order_of(api: ApiClient, customer: Customer) -> str:
    reply = api("GET", "/api/orders", headers=customer.headers)
    assert reply.status == 200, reply.body
    (order,) = reply.body["items"]
    return str(order["order_id"])
