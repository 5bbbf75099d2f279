"""Scenario 8: every endpoint of /openapi.json against every kind of caller: no token, a
forged token, an expired token, another customer, the owning customer, the admin. Each
gets the expected status, and no body shown to someone else carries the owner's data."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from config.bootstrap import Application
from config.settings import Settings
from kernel.auth import token_digest
from orders.commands import customer_cart_id
from tests.faults.support import final_statuses, start_api
from tests.support.api_client import ApiClient, Reply
from tests.support.event_log import whole_log
from tests.support.payments import succeeded_intent
from tests.support.polling import eventually
from tests.support.processes import Processes, wait_for_workers
from tests.support.shop import PASSWORD

CALLERS = ("none", "forged", "expired", "other", "owner", "admin")
UNAUTHENTICATED = ("none", "forged", "expired")


@dataclass
class Case:
    method: str
    path: str  # the template as /openapi.json names it
    expected: dict[str, int]
    url: str = ""  # with path parameters and query filled in
    body: Callable[[str], Any] | None = None  # caller -> body
    # For the customer callers (other, owner): a customer of their own, for an action
    # that would leave them unable to call the rest (their headers).
    customer: Callable[[str], dict[str, str]] | None = None


NO_ORDER = "00000000-0000-4000-8000-000000000000"


def public(status: int) -> dict[str, int]:
    return dict.fromkeys(CALLERS, status)


def customers_only(owner: int, other: int) -> dict[str, int]:
    return {**dict.fromkeys(UNAUTHENTICATED, 401), "other": other, "owner": owner, "admin": 403}


def a_customers_cart(owner: int) -> dict[str, int]:
    """A customer's cart, by its id: to anyone but its customer it does not exist; a token
    sent must be valid, and be a customer's."""
    return {**dict.fromkeys(UNAUTHENTICATED, 401), "none": 404, "other": 404, "owner": owner,
            "admin": 403}  # fmt: skip


def admins_only(admin: int) -> dict[str, int]:
    return {**dict.fromkeys(UNAUTHENTICATED, 401), "other": 403, "owner": 403, "admin": admin}


def _signed_in(api: ApiClient, email: str) -> dict[str, Any]:
    """A new session of the customer registered with `email` (and PASSWORD)."""
    reply = api("POST", "/api/sessions", {"email": email, "password": PASSWORD})
    assert reply.status == 201, (reply.status, reply.body)
    session: dict[str, Any] = reply.body
    return session


def _expired(application: Application, access_token: str) -> str:
    """`access_token`, its session's access expired a minute ago (as after its TTL)."""
    with application.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE customer_sessions SET access_expires_at = now() - interval '1 minute'"
                " WHERE access_hash = :access"
            ),
            {"access": token_digest(access_token)},
        )
    return access_token


def test_every_endpoint_answers_every_kind_of_caller_as_expected_and_leaks_nothing(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    api, _, env = start_api(
        processes, settings, SWEEP_INTERVAL="1", PAYMENT_TIMEOUT="10", MAX_PENDING_ORDERS="10"
    )
    worker = processes.worker(env)
    wait_for_workers(settings.require()[1], [worker])
    api.add_product("MUG-1", amount=1250, stock=1000)
    registered = api.register("owner@example.com", "Owner Person")
    owner_id, owner = registered.customer_id, registered.headers
    other = api.register("other@example.com", "Other Person").headers
    api.register("signer@example.com", "Signs In")  # whose sessions anyone may open
    forget_me = api.register("forget-me@example.com", "Forget Me").customer_id
    api.add_product("CAP-1", amount=899, stock=1000)
    owners_cart = customer_cart_id(owner_id)
    for sku in ("MUG-1", "CAP-1"):
        added = api("POST", f"/api/carts/{owners_cart}/items", {"sku": sku, "quantity": 1}, owner)
        assert added.status == 202, (added.status, added.body)

    def anonymous_cart() -> str:
        cart_id: str = api("POST", "/api/carts").body["cart_id"]
        api("POST", f"/api/carts/{cart_id}/items", {"sku": "MUG-1", "quantity": 1})
        return cart_id

    ship_me, cancel_me, refund_me, admin_cancels_me = (
        api.place(owner, {"MUG-1": 1}).body["order_id"] for _ in range(4)
    )
    ship_in_parts, return_from = (api.place(owner, {"MUG-1": 3}).body["order_id"] for _ in range(2))
    orders = (ship_me, cancel_me, refund_me, admin_cancels_me, ship_in_parts, return_from)

    def confirmed() -> None:
        statuses = final_statuses(whole_log(application))
        assert [statuses[o] for o in orders] == ["confirmed"] * len(orders)

    eventually(confirmed, timeout=30)
    # return_from shipped, one of its 3 mugs on its way back (to receive and inspect); the
    # customer's and the admin's returns below take one more each.
    shipped = api(
        "POST", f"/admin/api/orders/{return_from}/ship", {"tracking_number": "T0"}, api.admin
    )
    assert shipped.status == 202, shipped.body
    one_mug = {"lines": [{"sku": "MUG-1", "quantity": 1}], "reason": "too many"}
    asked = api("POST", f"/api/orders/{return_from}/returns", one_mug, owner)
    assert asked.status == 202, asked.body
    coming_back = asked.body["return_id"]
    today = datetime.now(UTC).date()
    expired = _expired(application, _signed_in(api, "owner@example.com")["access_token"])
    headers = {
        "none": {},
        "forged": {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"},  # no session's
        "expired": {"Authorization": f"Bearer {expired}"},
        "other": other,
        "owner": owner,
        "admin": api.admin,
    }
    order_body = {
        "lines": [{"sku": "MUG-1", "quantity": 1}],
        "shipping_address": {
            "name": "O",
            "line1": "1 St",
            "city": "C",
            "postal_code": "1",
            "country": "GB",
        },
        "payment": {"token": "pm_card_visa"},
    }
    cases = [
        Case(
            "POST",
            "/api/customers",
            public(201),
            body=lambda who: {
                "email": f"new-{who}@example.com",
                "name": "New",
                "password": PASSWORD,
            },
        ),
        Case(
            "POST",
            "/api/sessions",
            public(201),  # credentials in the body, whatever the token
            body=lambda who: {"email": "signer@example.com", "password": PASSWORD},
        ),
        Case(
            "POST",
            "/api/sessions/renew",
            public(200),  # the refresh token in the body is the credential
            body=lambda who: {
                "refresh_token": _signed_in(api, "signer@example.com")["refresh_token"]
            },
        ),
        Case(
            "POST",
            "/api/me/password",
            customers_only(204, 204),  # each changes their own
            body=lambda who: {"current_password": PASSWORD, "new_password": f"{PASSWORD} {who}"},
        ),
        Case("GET", "/api/me/export", customers_only(200, 200)),  # each their own
        Case(
            "DELETE",
            "/api/me",
            customers_only(202, 202),  # each forgets themselves
            customer=lambda who: api.register(f"{who}-{secrets.token_hex(4)}@example.com").headers,
        ),
        Case(
            "POST",
            "/admin/api/customers/{customer_id}/forget",
            admins_only(202),
            url=f"/admin/api/customers/{forget_me}/forget",
        ),
        Case("GET", "/api/products", public(200)),
        Case("GET", "/api/products/{sku}", public(200), url="/api/products/MUG-1"),
        Case(
            "POST",
            "/webhooks/stripe",
            public(400),  # signed by the provider (Stripe-Signature), never a token
            body=lambda who: {
                "id": f"evt_{who}",
                "type": "payment_intent.succeeded",
                "data": {"object": succeeded_intent("pi_1", refund_me, 1250 + 499)},
                "created": int(time.time()),
            },
        ),
        Case("POST", "/api/orders", customers_only(202, 202), body=lambda who: order_body),
        # Anyone may start an anonymous cart; a token sent must be a customer's, and valid.
        Case(
            "POST",
            "/api/carts",
            {**public(201), **dict.fromkeys(UNAUTHENTICATED[1:], 401), "admin": 403},
        ),
        Case(
            "POST",
            "/api/carts/{cart_id}/items",
            a_customers_cart(202),
            url=f"/api/carts/{owners_cart}/items",
            body=lambda who: {"sku": "MUG-1", "quantity": 1},
        ),
        Case(
            "PUT",
            "/api/carts/{cart_id}/items/{sku}",
            a_customers_cart(202),
            url=f"/api/carts/{owners_cart}/items/MUG-1",
            body=lambda who: {"quantity": 3},
        ),
        Case(
            "DELETE",
            "/api/carts/{cart_id}/items/{sku}",
            a_customers_cart(202),
            url=f"/api/carts/{owners_cart}/items/CAP-1",
        ),
        Case(
            "PUT",
            "/api/carts/{cart_id}/coupon",
            a_customers_cart(202),
            url=f"/api/carts/{owners_cart}/coupon",
            body=lambda who: {"code": "SAVE10"},
        ),
        Case(
            "DELETE",
            "/api/carts/{cart_id}/coupon",
            a_customers_cart(202),
            url=f"/api/carts/{owners_cart}/coupon",
        ),
        Case("GET", "/api/carts/{cart_id}", a_customers_cart(200), url=f"/api/carts/{owners_cart}"),
        Case("GET", "/api/cart", customers_only(200, 200)),  # each their own
        Case(
            "POST",
            "/api/cart/merge",
            customers_only(202, 202),  # each merges an anonymous cart into their own
            body=lambda who: {"cart_id": anonymous_cart()},
        ),
        Case(
            "POST",
            "/api/carts/{cart_id}/checkout",
            customers_only(202, 404),
            url=f"/api/carts/{owners_cart}/checkout",
            body=lambda who: {key: order_body[key] for key in ("shipping_address", "payment")},
        ),
        Case("GET", "/api/orders", customers_only(200, 200)),
        Case(
            "GET", "/api/orders/{order_id}", customers_only(200, 404), url=f"/api/orders/{ship_me}"
        ),
        Case(
            "GET",
            "/api/orders/{order_id}/payment",
            customers_only(200, 404),
            url=f"/api/orders/{ship_me}/payment",
        ),
        Case(
            "POST",
            "/api/orders/{order_id}/cancel",
            customers_only(202, 404),
            url=f"/api/orders/{cancel_me}/cancel",
            body=lambda who: {"reason": f"by {who}"},
        ),
        Case(
            "POST",
            "/admin/api/orders/{order_id}/ship",
            admins_only(202),
            url=f"/admin/api/orders/{ship_me}/ship",
            body=lambda who: {"tracking_number": "T1"},
        ),
        Case(
            "POST",
            "/admin/api/orders/{order_id}/shipments",
            admins_only(202),
            url=f"/admin/api/orders/{ship_in_parts}/shipments",
            body=lambda who: {"lines": [{"sku": "MUG-1", "quantity": 1}], "tracking_number": "T2"},
        ),
        Case(
            "POST",
            "/api/orders/{order_id}/returns",
            customers_only(202, 404),
            url=f"/api/orders/{return_from}/returns",
            body=lambda who: one_mug | {"reason": f"by {who}"},
        ),
        Case(
            "POST",
            "/admin/api/orders/{order_id}/returns",
            admins_only(202),
            url=f"/admin/api/orders/{return_from}/returns",
            body=lambda who: one_mug | {"reason": f"by {who}"},
        ),
        Case(
            "POST",
            "/admin/api/orders/{order_id}/returns/{return_id}/receive",
            admins_only(202),
            url=f"/admin/api/orders/{return_from}/returns/{coming_back}/receive",
        ),
        Case(
            "POST",
            "/admin/api/orders/{order_id}/returns/{return_id}/inspect",
            admins_only(202),  # after receive: the cases run in this order
            url=f"/admin/api/orders/{return_from}/returns/{coming_back}/inspect",
            body=lambda who: {"accepted": [{"sku": "MUG-1", "quantity": 1}], "note": who},
        ),
        Case(
            "POST",
            "/admin/api/orders/{order_id}/cancel",
            admins_only(202),
            url=f"/admin/api/orders/{admin_cancels_me}/cancel",
            body=lambda who: {"reason": f"by {who}"},
        ),
        Case(
            "POST",
            "/admin/api/orders/{order_id}/refund",
            admins_only(202),
            url=f"/admin/api/orders/{refund_me}/refund",
            body=lambda who: {"reason": "sorry"},
        ),
        Case(
            "POST",
            "/admin/api/products",
            admins_only(202),
            body=lambda who: {
                "sku": "NEW-1",
                "name": "New",
                "stock": 3,
                "price": {"amount": 100, "currency": "EUR"},
            },
        ),
        Case(
            "POST",
            "/admin/api/products/{sku}/restock",
            admins_only(202),
            url="/admin/api/products/MUG-1/restock",
            body=lambda who: {"quantity": 5},
        ),
        Case(
            "POST",
            "/admin/api/products/{sku}/price",
            admins_only(202),
            url="/admin/api/products/MUG-1/price",
            body=lambda who: {"amount": 1300, "currency": "EUR"},
        ),
        Case("GET", "/admin/api/pricing/tax-rates", admins_only(200)),
        Case(
            "PUT",
            "/admin/api/pricing/tax-rates/{country}",
            admins_only(202),
            url="/admin/api/pricing/tax-rates/DE",
            body=lambda who: {"rate_bp": 1900, "prices_include_tax": True},
        ),
        Case(
            "DELETE",
            "/admin/api/pricing/tax-rates/{country}",
            admins_only(404),  # Japan has no rate
            url="/admin/api/pricing/tax-rates/JP",
        ),
        Case("GET", "/admin/api/pricing/list-prices", admins_only(200)),
        Case(
            "PUT",
            "/admin/api/pricing/list-prices/{currency}/{sku}",
            admins_only(202),
            url="/admin/api/pricing/list-prices/USD/MUG-1",
            body=lambda who: {"amount": 1400},
        ),
        Case(
            "DELETE",
            "/admin/api/pricing/list-prices/{currency}/{sku}",
            admins_only(404),  # no price in pounds
            url="/admin/api/pricing/list-prices/GBP/MUG-1",
        ),
        Case("GET", "/admin/api/pricing/promotions", admins_only(200)),
        Case(
            "POST",
            "/admin/api/pricing/promotions",
            admins_only(202),
            body=lambda who: {"description": f"by {who}", "percent_bp": 500},
        ),
        Case(
            "POST",
            "/admin/api/pricing/promotions/{promotion_id}/end",
            admins_only(404),
            url="/admin/api/pricing/promotions/no-such-promotion/end",
        ),
        Case("GET", "/admin/api/pricing/coupons", admins_only(200)),
        Case(
            "POST",
            "/admin/api/pricing/coupons",
            admins_only(202),
            body=lambda who: {
                "code": "MATRIX",
                "description": "5 % off",
                "usage_limit": 5,
                "percent_bp": 500,
            },
        ),
        Case(
            "POST",
            "/admin/api/pricing/coupons/{code}/disable",
            admins_only(404),
            url="/admin/api/pricing/coupons/NO-SUCH-CODE/disable",
        ),
        Case("GET", "/admin/api/orders", admins_only(200)),
        Case(
            "GET",
            "/admin/api/orders/{order_id}",
            admins_only(200),
            url=f"/admin/api/orders/{ship_me}",
        ),
        Case(
            "GET",
            "/admin/api/analytics/sales",
            admins_only(200),
            url=f"/admin/api/analytics/sales?from={today - timedelta(days=30)}&to={today}",
        ),
        Case("GET", "/admin/api/analytics/top-products", admins_only(200)),
        Case("GET", "/admin/api/projections", admins_only(200)),
        Case(
            "POST",
            "/admin/api/projections/{name}/rebuild",
            admins_only(202),
            url="/admin/api/projections/sales_analytics/rebuild",
        ),
        Case("GET", "/admin/api/sagas", admins_only(200)),
        Case(
            "POST",
            "/admin/api/sagas/{order_id}/retry",
            admins_only(404),
            url=f"/admin/api/sagas/{NO_ORDER}/retry",
        ),
        Case("GET", "/admin/api/parked", admins_only(200)),
        Case(
            "GET",
            "/admin/api/parked/{subscription}/{key}",
            admins_only(404),  # nothing is parked
            url=f"/admin/api/parked/order_detail@1/{ship_me}",
        ),
        Case(
            "POST",
            "/admin/api/parked/{subscription}/{key}/retry",
            admins_only(404),
            url=f"/admin/api/parked/order_detail@1/{ship_me}/retry",
        ),
        Case(
            "POST",
            "/admin/api/parked/{subscription}/{key}/skip",
            admins_only(404),
            url=f"/admin/api/parked/order_detail@1/{ship_me}/skip",
            body=lambda who: {"reason": f"by {who}"},
        ),
        # Last: signing out ends the sessions the other and the owner call with.
        Case("DELETE", "/api/sessions/current", customers_only(204, 204)),
    ]
    spec = api("GET", "/openapi.json").body
    documented = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method != "parameters"
    }
    assert {(case.method, case.path) for case in cases} == documented, "classify new endpoints"

    owners_data = [owner_id, "owner@example.com", "Owner Person", *orders]
    wrong: list[str] = []
    leaks: list[str] = []
    for case in cases:
        for who in CALLERS:  # the entitled caller last: its effect must not change the others'
            if who in ("owner", "admin") and case.expected[who] in (202, 201):
                continue
            _check(api, case, who, _headers(case, who, headers), wrong, leaks, owners_data)
        for who in ("owner", "admin"):
            if case.expected[who] in (202, 201):
                _check(api, case, who, _headers(case, who, headers), wrong, leaks, owners_data)
    assert not wrong, "\n".join(wrong)
    assert not leaks, "\n".join(leaks)
    figures.update(endpoints=len(cases), callers=len(CALLERS), requests=len(cases) * len(CALLERS))


def _headers(case: Case, who: str, headers: dict[str, dict[str, str]]) -> dict[str, str]:
    if case.customer is not None and who in ("other", "owner"):
        return case.customer(who)
    return headers[who]


def _check(
    api: Any,
    case: Case,
    who: str,
    headers: dict[str, str],
    wrong: list[str],
    leaks: list[str],
    owners_data: list[str],
) -> None:
    body = case.body(who) if case.body else None
    reply: Reply = api(case.method, case.url or case.path, body, headers)
    expected = case.expected[who]
    where = f"{case.method} {case.path} as {who}"
    if reply.status != expected:
        wrong.append(f"{where}: {reply.status} (expected {expected}): {str(reply.body)[:200]}")
    if reply.status == 401 and "WWW-Authenticate" not in reply.headers:
        wrong.append(f"{where}: 401 without WWW-Authenticate")
    if reply.status >= 400 and not reply.content_type.startswith("application/problem+json"):
        wrong.append(f"{where}: {reply.status} as {reply.content_type}")
    if who not in ("owner", "admin"):
        text = str(reply.body) + str(reply.headers.get("Location", ""))
        sent = (case.url or case.path) + str(body)
        for value in owners_data:  # what the caller did not send itself
            if value in text and value not in sent:
                leaks.append(f"{where}: the body carries the owner's {value!r}")
