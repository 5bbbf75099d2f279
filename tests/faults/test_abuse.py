"""Scenarios of abuse against the running system: consistency tokens that name no write,
stock hoarding with payments that never answer, request floods on registration, sign-in
and ordering, and shipping an order whose payment was refunded."""

from __future__ import annotations

import threading
import time
from typing import Any

from config.bootstrap import Application
from config.settings import Settings
from tests.faults.support import CSRF, Browser, run_threads, start_api
from tests.support.api_client import ApiClient, Customer, Reply
from tests.support.event_log import whole_log
from tests.support.payments import AUTHENTICATION_REQUIRED
from tests.support.polling import eventually
from tests.support.processes import Processes, wait_for_workers
from tests.support.shop import PASSWORD


def _problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.content_type.startswith("application/problem+json"), reply.content_type
    body: dict[str, Any] = reply.body
    return body


def test_forged_tokens_are_refused_at_once_and_an_unapplied_write_is_not_visible_yet(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    api, _, _ = start_api(processes, settings)  # no worker: nothing gets applied
    api.add_product("MUG-1", stock=100)
    shopper = api.register("ada@example.com")
    placed = api.place(shopper.headers, {"MUG-1": 1}).body
    tx, position, slot = (int(part) for part in placed["consistency_token"].split("."))
    forged = [
        "99999999999999999999.1",
        f"{tx}.{position + 10_000}",
        f"{tx + 10_000}.{position}.{slot}",
    ]
    slowest = 0.0
    stop = threading.Event()
    answers: set[int] = set()

    def forger(index: int) -> None:
        nonlocal slowest
        while not stop.is_set():
            token = forged[index % len(forged)]
            reply = api("GET", f"/api/orders?consistency_token={token}", None, shopper.headers)
            answers.add(reply.status)
            slowest = max(slowest, reply.seconds)

    threads = [threading.Thread(target=forger, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)
        products = [api("GET", "/api/products").seconds for _ in range(20)]
        own = api(
            "GET",
            f"/api/orders/{placed['order_id']}?consistency_token={placed['consistency_token']}",
            None,
            shopper.headers,
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert answers == {422}
    assert slowest < 1.5, "a forged token was waited for"
    body = _problem(own, 503)
    assert body["type"] == "/problems/not-visible-yet"
    assert int(own.headers["Retry-After"]) >= 1
    assert own.headers["X-Read-Model-Stale"] == "true"
    unknown = api("GET", f"/api/orders/{'0' * 8}-0000-4000-8000-{'0' * 12}", None, shopper.headers)
    _problem(unknown, 404)  # no token: nothing of the caller's is pending, so not found
    figures.update(
        forged_token_answers=sorted(answers),
        slowest_forged_answer_s=round(slowest, 3),
        products_max_s_meanwhile=round(max(products), 3),
        own_unapplied_order=own.status,
    )


def test_a_customer_cannot_hoard_stock_with_payments_that_never_answer(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    api, _, env = start_api(
        processes, settings, MAX_PENDING_ORDERS="2", MAX_RESERVED_UNITS="20", PAYMENT_TIMEOUT="600"
    )
    api.add_product("GOLD-1", stock=1000)
    workers = [processes.worker(env)]
    wait_for_workers(settings.require()[1], workers)
    hoarders = [api.register(f"hoarder{n}@example.com") for n in range(3)]
    refused: list[dict[str, Any]] = []
    accepted: list[str] = []
    lock = threading.Lock()

    barrier = threading.Barrier(4 * len(hoarders))

    def hoard(index: int) -> None:
        barrier.wait(timeout=30)  # four at once per customer: the cap holds under the race
        reply = api.place(
            hoarders[index % len(hoarders)].headers, {"GOLD-1": 9}, AUTHENTICATION_REQUIRED
        )
        with lock:
            if reply.status == 202:
                accepted.append(reply.body["order_id"])
            else:
                refused.append(_problem(reply, 429) | {"retry": reply.headers["Retry-After"]})

    run_threads(4 * len(hoarders), hoard)
    assert len(accepted) == 2 * len(hoarders)  # 18 units each: two orders, not a third
    assert {problem["type"] for problem in refused} == {"/problems/too-many-pending-orders"}
    assert all(590 <= int(problem["retry"]) <= 600 for problem in refused)  # the timeout
    placed = [event for event in whole_log(application) if event.type == "OrderPlaced"]
    assert sorted(event.data["order_id"] for event in placed) == sorted(accepted)
    buyer = api.register("buyer@example.com")
    too_large = api.place(buyer.headers, {"GOLD-1": 21})  # never allowed: 422, not 429
    assert _problem(too_large, 422)["type"] == "/problems/order-too-large"
    waiting = api.place(buyer.headers, {"GOLD-1": 12}, AUTHENTICATION_REQUIRED)
    assert waiting.status == 202, waiting.body
    too_many = api.place(buyer.headers, {"GOLD-1": 9})
    assert _problem(too_many, 429)["type"] == "/problems/too-many-reserved-units"
    buyer = api.register("payer@example.com")
    bought = api.place(buyer.headers, {"GOLD-1": 20})
    assert bought.status == 202, bought.body

    def confirmed() -> None:
        order = api("GET", f"/api/orders/{bought.body['order_id']}", None, buyer.headers)
        assert order.status == 200 and order.body["order"]["status"] == "confirmed", order.body

    eventually(confirmed, timeout=30, interval=0.2)
    again = api.place(buyer.headers, {"GOLD-1": 20})  # paid orders hold nothing
    assert again.status == 202, again.body
    figures.update(
        hoarders=len(hoarders),
        units_held_by_hoarders=18 * len(accepted),
        placements_refused=len(refused),
        paying_customer_served=True,
    )


def test_floods_of_registrations_sign_ins_and_orders_get_429_with_retry_after(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    api, _, _ = start_api(
        processes,
        settings,
        REGISTRATION_RATE_LIMIT="3/hour",
        SIGN_IN_RATE_LIMIT="2/minute",
        ORDER_RATE_LIMIT="3/minute",
    )
    api.add_product("MUG-1", stock=100)
    registered = [
        api(
            "POST",
            "/api/customers",
            {"email": f"c{n}@example.com", "name": "C", "password": PASSWORD},
        )
        for n in range(5)
    ]
    assert [reply.status for reply in registered] == [201, 201, 201, 429, 429]
    assert int(registered[-1].headers["Retry-After"]) > 0
    _problem(registered[-1], 429)

    shopper = Customer(
        registered[0].body["customer_id"],
        {"Authorization": f"Bearer {registered[0].body['token']}"},
    )
    other = Customer(
        registered[1].body["customer_id"],
        {"Authorization": f"Bearer {registered[1].body['token']}"},
    )
    placements = [api.place(shopper.headers, {"MUG-1": 1}).status for _ in range(5)]
    assert placements == [202, 202, 202, 429, 429]
    assert api.place(other.headers, {"MUG-1": 1}).status == 202  # counted per customer

    sign_ins = [_sign_in(api, "wrong-token") for _ in range(3)]
    assert [status for status, _ in sign_ins] == [401, 401, 429]
    assert int(sign_ins[-1][1]["Retry-After"]) > 0
    guesses = [
        api("POST", "/api/sessions", {"email": "c0@example.com", "password": f"guess {n}"})
        for n in range(3)
    ]
    assert [reply.status for reply in guesses] == [401, 401, 429]  # counted apart from the above
    assert int(guesses[-1].headers["Retry-After"]) > 0
    _problem(guesses[-1], 429)
    figures.update(
        registrations=[reply.status for reply in registered],
        placements=placements,
        sign_ins=[status for status, _ in sign_ins],
        customer_sign_ins=[reply.status for reply in guesses],
    )


def _sign_in(api: ApiClient, token: str) -> tuple[int, dict[str, str]]:
    """Post the dashboard's sign-in form as a browser does (with its CSRF token): the
    status and headers of the answer."""
    browser = Browser(api.base_url)
    _, _, form = browser("GET", "/admin/login")
    (csrf,) = set(CSRF.findall(form))
    status, _, _ = browser("POST", "/admin/login", {"token": token, "csrf_token": csrf})
    return status, browser.headers


def test_an_order_refunded_before_shipping_is_cancelled_and_cannot_ship(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    api, _, env = start_api(processes, settings)
    api.add_product("MUG-1", stock=10)
    workers = [processes.worker(env)]
    wait_for_workers(settings.require()[1], workers)
    shopper = api.register("ada@example.com")
    placed = api.place(shopper.headers, {"MUG-1": 3}).body
    order_path = f"/admin/api/orders/{placed['order_id']}"

    def status_is(expected: str) -> None:
        reply = api("GET", order_path, None, api.admin)
        assert reply.status == 200 and reply.body["order"]["status"] == expected, reply.body

    eventually(lambda: status_is("confirmed"), timeout=30, interval=0.2)
    refund = api("POST", f"{order_path}/refund", {"reason": "goodwill"}, api.admin)
    assert refund.status == 202, refund.body
    shipped = api("POST", f"{order_path}/ship", {"tracking_number": "TRK-1"}, api.admin)
    assert _problem(shipped, 409)["type"] == "/problems/order-not-shippable"
    eventually(lambda: status_is("cancelled"), timeout=30, interval=0.2)

    def restocked() -> None:
        products = api("GET", "/api/products").body["items"]
        assert [item["available"] for item in products] == [10], products

    eventually(restocked, timeout=30, interval=0.2)
    history = [event["type"] for event in api("GET", order_path, None, api.admin).body["history"]]
    assert "OrderShipped" not in history
    assert history.index("PaymentRefunded") < history.index("OrderCancelled")
    figures.update(history=history)
