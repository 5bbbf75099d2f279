"""The payment provider failing under the shop, end to end: a webhook lost on its way and
recovered by reconciliation; a 3-D Secure payment the provider, slow for a moment, makes
as the order's payment deadline passes (refunded, the order stays cancelled); a charge
the provider makes only after the deadline cancelled its order, its webhook lost too
(found by fencing the abandoned charge's idempotency key, and refunded); and the provider
frozen for 30 s in the middle of a steady stream of orders, after which no order is
charged twice, none kept charged while cancelled, and every one is settled.

The system here pays through a local Stripe of its own (`python -m
localdev.stripe_server`, started for this module), so the tests can stop it with SIGSTOP
as a hung provider would be: it accepts connections (the kernel does) and answers none,
every call the payments workers make runs into their read timeout, and when it resumes
it carries out the requests it took meanwhile, as Stripe does with a request whose
client gave up. Settings:

- PAYMENT_PROVIDER_READ_TIMEOUT=3: a call to the frozen provider gives up after 3 s (the
  default 10 s would only make the tests longer), and RQ retries the job with the same
  idempotency key after 1, 2, 4, 8, 15, 30 ... s;
- PAYMENT_RECONCILE_AFTER=5: a payment waiting on the provider for 5 s is asked about
  again by the sweep (every second here), so a lost webhook costs seconds, not 30;
- PAYMENT_TIMEOUT=15, shorter than the outage on purpose: orders placed before and early
  in it pass their deadline while their charge is stuck, and are cancelled and their
  stock released; the charges the provider then makes for them, from requests waiting
  in its socket's backlog or from the jobs' retries, succeed late and must be refunded.
  With a deadline longer than the outage (say 90 s) every order would simply be
  confirmed late, and the refund path, where a second or unrefunded charge would hide,
  would go untested. 15 s still leaves a 3-D Secure payment ample time to be
  reconciled (5 s, plus a sweep) before its deadline;
- four payments workers: each one is held 3 s by every call to the frozen provider.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rq.job import Job
from sqlalchemy import text

from config.bootstrap import Application
from config.settings import Settings
from tests.e2e.fulfillment_support import (
    CARD_3DS,
    CARD_OK,
    PROVIDER_ACTOR,
    Storefront,
    System,
    WebhookCatcher,
    events_of,
    inbox,
    on_hand,
    running_system,
    saga_triggers,
    types_of,
)
from tests.support.polling import eventually

PAYMENT_TIMEOUT = 15.0
RECONCILE_AFTER = 5.0
PAYMENTS_WORKERS = 4

ORDERS_PER_SECOND = 3
BEFORE_OUTAGE = 5.0  # seconds of orders before the provider stops
OUTAGE = 30.0
AFTER_OUTAGE = 3.0  # seconds of orders after it resumes
STOCK = 10_000


@pytest.fixture(scope="module")
def system(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    logs = tmp_path_factory.mktemp("provider-faults")
    with running_system(
        settings,
        logs,
        workers=2,
        payment_timeout=PAYMENT_TIMEOUT,
        payments_workers=PAYMENTS_WORKERS,
        own_provider=True,
        PAYMENT_PROVIDER_READ_TIMEOUT="3",
        PAYMENT_RECONCILE_AFTER=str(RECONCILE_AFTER),
    ) as running:
        yield running


def test_a_lost_webhook_is_recovered_by_reconciliation(
    shop: Storefront, system: System, application: Application
) -> None:
    shop.add_product("MUG-1", stock=10)
    ada = shop.register("ada@example.com")
    order_id = shop.place(ada, {"MUG-1": 2}, CARD_3DS)
    shop.wait_for_saga(order_id, state="in_progress", step="paying", payment="pending")
    shop.wait_for_order(order_id, "pending", ["PaymentPending"])

    # The customer authenticates; the provider's webhook cannot reach the API (its
    # endpoint answers 503), and the provider, as localstripe does, never retries it.
    with system.webhook_diverted(WebhookCatcher(status=503)) as catcher:
        intent_id = shop.complete_3d_secure(ada, order_id)
        lost = catcher.wait_for("payment_intent.succeeded", intent_id)
    assert shop.provider.intent(intent_id)["status"] == "succeeded"

    # Reconciliation looks the pending charge up, and finds it paid.
    saga = shop.wait_for_saga(
        order_id, state="completed", step="awaiting_shipment", payment="succeeded"
    )
    found = shop.wait_for_order(order_id, "confirmed", ["OrderConfirmed"])
    assert types_of(found["history"]) == [
        "OrderPlaced",
        "StockReserved",
        "InventoryReserved",
        "PaymentRequested",
        "PaymentPending",
        "PaymentSucceeded",
        "OrderConfirmed",
    ]
    (paid,) = events_of(application.engine, "PaymentSucceeded", order_id)
    assert paid["provider_reference"] == intent_id
    assert paid["provider_event_id"] is None  # a look-up, not the (lost) event
    assert paid["amount_captured"] == found["order"]["total"]
    succeeded = found["history"][5]
    assert succeeded["actor"] == PROVIDER_ACTOR
    # Asked in the placement's conversation: the reconciled call carries it on.
    assert succeeded["correlation_id"] == found["history"][0]["correlation_id"]
    assert [row.provider_event_id for row in inbox(application.engine)] == []
    assert lost.event["id"] not in {row.provider_event_id for row in inbox(application.engine)}
    assert ("PaymentSucceeded", ["ConfirmOrder ok"]) in [
        (moment["trigger"], moment["commands"]) for moment in saga["history"]
    ]
    assert _awaiting_provider(application) == 0


def test_a_3d_secure_payment_made_as_the_deadline_passes_is_refunded(
    shop: Storefront, system: System, application: Application
) -> None:
    """The customer authenticates just as the payment deadline passes, and the provider,
    slow at that moment, carries out the authentication before the shop's cancellation
    of the charge: the charge it made is recorded and given back; the order stays
    cancelled."""
    shop.add_product("MUG-1", stock=10)
    ada = shop.register("ada@example.com")
    order_id = shop.place(ada, {"MUG-1": 2}, CARD_3DS)
    intent_id, client_secret = shop.secure_action(ada, order_id)
    provider = system.provider_process
    assert provider is not None

    with ThreadPoolExecutor(1) as customer:
        system.processes.kill(provider, signal.SIGSTOP)
        try:
            # The customer's authentication reaches the provider, which answers nothing...
            authenticating = customer.submit(
                shop.provider.authenticate, intent_id, client_secret, timeout=120
            )
            # ... the deadline passes, and the cancellation of the charge reaches it too.
            shop.wait_for_order(
                order_id,
                "cancelled",
                ["PaymentCancellationRequested"],
                timeout=PAYMENT_TIMEOUT + 30,
            )
            cancel_job = f"payment-{order_id}-cancel-1"
            eventually(lambda: _assert_job_status(application, cancel_job, "scheduled"), timeout=30)
        finally:
            system.processes.kill(provider, signal.SIGCONT)
        status, answer = authenticating.result(timeout=30)
    assert (status, answer.get("status")) == (200, "succeeded"), (status, answer)

    saga = shop.wait_for_saga(
        order_id, state="compensated", step="cancelled", reservation="released", payment="refunded"
    )
    found = shop.wait_for_order(order_id, "cancelled", ["PaymentRefunded"], timeout=60)
    assert found["order"]["cancellation"]["reason"] == "payment timed out"
    assert types_of(found["history"]) == [
        "OrderPlaced",
        "StockReserved",
        "InventoryReserved",
        "PaymentRequested",
        "PaymentPending",
        "StockReleased",
        "InventoryReleased",
        "OrderCancelled",
        "PaymentCancellationRequested",
        "PaymentSucceeded",
        "RefundRequested",
        "PaymentRefunded",
    ]
    assert found["order"]["payment"]["refund_reason"] == (
        "payment arrived after the order was cancelled"
    )
    assert saga_triggers(saga)[-5:] == [
        ("payment deadline", ["ReleaseInventory ok", "CancelOrder ok", "AbandonPayment ok"]),
        ("InventoryReleased", []),
        ("OrderCancelled", []),
        ("PaymentSucceeded", ["RefundPayment ok"]),
        ("PaymentRefunded", []),
    ]
    _assert_refunded(shop, application, order_id, intent_id)
    assert shop.available() == {"MUG-1": 10}


def test_a_charge_made_after_its_order_was_cancelled_is_refunded_though_its_webhook_is_lost(
    shop: Storefront, system: System, application: Application
) -> None:
    """The shop asked for a charge and could not learn the outcome (the provider took the
    request and froze); the payment deadline cancels the order; then the provider carries
    out the request, and its webhook about it is lost. Nobody may keep money for a
    cancelled order: the shop must still learn of the charge, and give it back."""
    shop.add_product("MUG-1", stock=10)
    ada = shop.register("ada@example.com")
    provider = system.provider_process
    assert provider is not None
    # The provider's webhook goes astray throughout.
    with system.webhook_diverted(WebhookCatcher()) as catcher:
        system.processes.kill(provider, signal.SIGSTOP)
        try:
            order_id = shop.place(ada, {"MUG-1": 2}, CARD_OK)
            cancelled = shop.wait_for_order(
                order_id, "cancelled", ["OrderCancelled"], timeout=PAYMENT_TIMEOUT + 30
            )
            assert cancelled["order"]["cancellation"]["reason"] == "payment timed out"
            # No call is under way now: the last one timed out, and the job waits to retry
            # (or, the charge being abandoned, has nothing left to do).
            charge_job = f"payment-{order_id}-charge-1"
            eventually(
                lambda: _assert_job_status(application, charge_job, "scheduled", "finished"),
                timeout=30,
            )
        finally:
            system.processes.kill(provider, signal.SIGCONT)
        # The provider works through the requests it took while frozen: it charges.
        intent = eventually(lambda: _only_intent(shop, order_id, "succeeded"), timeout=20)
        catcher.wait_for("payment_intent.succeeded", intent["id"])

    found = shop.wait_for_order(
        order_id, "cancelled", ["PaymentSucceeded", "PaymentRefunded"], timeout=20
    )
    (paid,) = events_of(application.engine, "PaymentSucceeded", order_id)
    assert (paid["provider_reference"], paid["provider_event_id"]) == (intent["id"], None)
    assert found["order"]["payment"]["status"] == "refunded"
    _assert_refunded(shop, application, order_id, intent["id"])
    assert shop.available() == {"MUG-1": 10}


@pytest.mark.slow
def test_the_provider_stopped_for_30_s_under_load_charges_no_order_twice(
    shop: Storefront, system: System, application: Application
) -> None:
    shop.add_product("MUG-1", stock=STOCK, amount=1250)
    customers = [shop.register(f"customer-{n}@example.com") for n in range(5)]
    provider = system.provider_process
    assert provider is not None

    placed: list[str] = []
    started = time.monotonic()
    stopped_at = resumed_at = None
    try:
        while (elapsed := time.monotonic() - started) < BEFORE_OUTAGE + OUTAGE + AFTER_OUTAGE:
            if stopped_at is None and elapsed >= BEFORE_OUTAGE:
                system.processes.kill(provider, signal.SIGSTOP)
                stopped_at = datetime.now(UTC)
            if resumed_at is None and elapsed >= BEFORE_OUTAGE + OUTAGE:
                system.processes.kill(provider, signal.SIGCONT)
                resumed_at = datetime.now(UTC)
            shopper = customers[len(placed) % len(customers)]
            placed.append(shop.place(shopper, {"MUG-1": 1}, CARD_OK))
            time.sleep(max(0.0, started + len(placed) / ORDERS_PER_SECOND - time.monotonic()))
    finally:
        system.processes.kill(provider, signal.SIGCONT)
    assert stopped_at is not None and resumed_at is not None
    system.assert_alive()

    # Every order ends confirmed or cancelled, with nothing left waiting on the provider,
    # and the read models show it.
    def settled() -> dict[str, dict[str, Any]]:
        assert _awaiting_provider(application) == 0, "payments still wait on the provider"
        found = {}
        for order_id in placed:
            order = shop.settled_order(order_id)
            status, payment = order["order"]["status"], order["order"]["payment"]["status"]
            assert (status, payment) in OUTCOMES, (
                order_id,
                status,
                payment,
                types_of(order["history"]),
            )
            found[order_id] = order
        return found

    orders = eventually(settled, timeout=150, interval=1)
    listed = _order_list(shop)
    assert {order_id: listed[order_id] for order_id in placed} == {
        order_id: order["order"]["status"] for order_id, order in orders.items()
    }
    outcome = {order_id: _outcome(order) for order_id, order in orders.items()}
    print(f"\n{len(placed)} orders: {dict(Counter(outcome.values()))}")

    # In the log: one charge asked per order and at most one success; an order cancelled
    # by its deadline either was never charged (the charge abandoned, its key fenced
    # before any charge took it) or is refunded (the charge was under way).
    for order_id, order in orders.items():
        history = types_of(order["history"])
        assert history.count("PaymentRequested") == 1, (order_id, history)
        if outcome[order_id] != CONFIRMED:
            assert order["order"]["cancellation"] == {
                "reason": "payment timed out",
                "cancelled_by": "system",
            }
        charged = 0 if outcome[order_id] == NEVER_CHARGED else 1
        assert history.count("PaymentSucceeded") == charged, (order_id, history)
        refunded = 1 if outcome[order_id] == REFUNDED else 0
        assert history.count("PaymentRefunded") == refunded, (order_id, history)

    # At the provider: nobody charged twice, nor kept charged for a cancelled order. Per
    # order, at most one PaymentIntent (one per idempotency key). A confirmed order's is
    # succeeded and kept, and is the one PaymentSucceeded names; a refunded one's is
    # refunded in full; an order whose charge was abandoned has none that charged.
    intents = shop.provider.intents_by_order()
    succeeded_by = {e["order_id"]: e for e in events_of(application.engine, "PaymentSucceeded")}
    refunded_by = {e["order_id"]: e for e in events_of(application.engine, "PaymentRefunded")}
    for order_id in placed:
        at_provider = intents.get(order_id, [])
        seen = [(i["id"], i["status"]) for i in at_provider]
        if outcome[order_id] == NEVER_CHARGED:
            # At most the fence's claim on the key: never confirmed, cancelled at once.
            fences = [(i["id"], "canceled") for i in at_provider if i["metadata"].get("fence")]
            assert seen == fences, (order_id, "charged, never recorded nor refunded", seen)
            assert types_of(orders[order_id]["history"])[-1] == "PaymentFailed", order_id
            continue
        assert len(at_provider) == 1, (order_id, seen)
        (intent,) = at_provider
        assert intent["metadata"] == {"order_id": order_id, "attempt": "1"}
        total = orders[order_id]["order"]["total"]["amount"]
        assert (intent["status"], intent["amount"], intent["currency"]) == (
            "succeeded",
            total,
            "eur",
        )
        assert succeeded_by[order_id]["provider_reference"] == intent["id"]
        charge = shop.provider.charge(intent["latest_charge"])
        if outcome[order_id] == CONFIRMED:
            assert (intent["amount_received"], charge["amount_refunded"]) == (total, 0)
        else:
            assert (charge["refunded"], charge["amount_refunded"]) == (True, total), charge
            refunds = shop.provider.client.v1.refunds.list(params={"payment_intent": intent["id"]})
            assert [r.id for r in refunds.data] == [refunded_by[order_id]["provider_reference"]]
    confirmed = [order_id for order_id in placed if outcome[order_id] == CONFIRMED]

    # No charge was answered while the provider was frozen (a second of slack for an
    # answer already on its way when it stopped), so the outage really was one.
    during = [
        at
        for at in _recorded_at(application, "PaymentSucceeded")
        if stopped_at + timedelta(seconds=1) < at < resumed_at
    ]
    assert during == []
    placed_during = _placed_between(application, stopped_at, resumed_at)
    assert placed_during >= OUTAGE * ORDERS_PER_SECOND / 2, placed_during

    # The stock: what the confirmed orders hold stays set aside, the rest is back on sale.
    assert shop.available() == {"MUG-1": STOCK - len(confirmed)}
    assert on_hand(application.engine) == {"MUG-1": STOCK}


CONFIRMED = ("confirmed", "succeeded")
REFUNDED = ("cancelled", "refunded")  # charged after the deadline, and given back
NEVER_CHARGED = ("cancelled", "failed")  # abandoned, and its key fenced before any charge
OUTCOMES = (CONFIRMED, REFUNDED, NEVER_CHARGED)
"""How each order placed around the outage may end: (order status, payment status)."""


def _outcome(order: dict[str, Any]) -> tuple[str, str]:
    return order["order"]["status"], order["order"]["payment"]["status"]


def _assert_refunded(
    shop: Storefront, application: Application, order_id: str, intent_id: str
) -> None:
    """The order's one charge is refunded in full at the provider, by the refund its
    one PaymentRefunded names."""
    (refunded,) = events_of(application.engine, "PaymentRefunded", order_id)
    intent = _only_intent(shop, order_id, "succeeded")
    assert intent["id"] == intent_id
    charge = shop.provider.charge(intent["latest_charge"])
    assert (charge["refunded"], charge["amount_refunded"]) == (True, charge["amount"])
    assert refunded["amount"]["amount"] == charge["amount"] == intent["amount_received"]
    refunds = shop.provider.client.v1.refunds.list(params={"payment_intent": intent_id})
    assert [r.id for r in refunds.data] == [refunded["provider_reference"]]


def _awaiting_provider(application: Application) -> int:
    """How many payments wait on the provider (a charge or refund asked, or pending)."""
    with application.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM provider_payments WHERE awaiting_since IS NOT NULL")
            ).scalar_one()
        )


def _assert_job_status(application: Application, job_id: str, *statuses: str) -> None:
    found = Job.fetch(job_id, connection=application.redis).get_status(refresh=True)
    assert found in statuses, f"job {job_id} is {found}, not {' or '.join(statuses)}"


def _only_intent(shop: Storefront, order_id: str, status: str) -> dict[str, Any]:
    """The order's one PaymentIntent at the provider, once it has `status`."""
    intents = shop.provider.intents_of(order_id)
    assert [intent["status"] for intent in intents] == [status], intents
    return intents[0]


def _recorded_at(application: Application, event_type: str) -> list[datetime]:
    with application.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT recorded_at FROM events WHERE type = :type"), {"type": event_type}
        ).scalars()
        return list(rows)


def _placed_between(application: Application, start: datetime, end: datetime) -> int:
    return sum(1 for at in _recorded_at(application, "OrderPlaced") if start <= at < end)


def _order_list(shop: Storefront) -> dict[str, str]:
    """Every order's status as the admin's order list (its own read model) shows it."""
    found: dict[str, str] = {}
    cursor: str | None = None
    while True:
        query = "?limit=100" + (f"&cursor={cursor}" if cursor else "")
        page = shop.call("GET", f"/admin/api/orders{query}", headers=shop.admin, expect=200)
        found.update({item["order_id"]: item["status"] for item in page["items"]})
        cursor = page["next_cursor"]
        if not cursor:
            return found
