"""Scenario 6: the same thing delivered twice (or many times at once) has one effect:
an RQ catch-up, deadline or payment job, a signed Stripe webhook event, an order with one
Idempotency-Key."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from rq import Queue
from sqlalchemy import text

from config import jobs
from config.bootstrap import Application, bootstrap
from config.jobs import Jobs
from config.queues import PAYMENTS, PROJECTIONS, SAGAS
from config.settings import Settings
from tests.faults.support import (
    assert_read_models_equal_rebuild,
    assert_sagas_exactly_once,
    run_threads,
    settled,
    start_api,
)
from tests.support.api_client import ApiClient, Reply, call
from tests.support.event_log import event_count, whole_log
from tests.support.payments import (
    AUTHENTICATION_REQUIRED,
    DECLINED,
    SUCCEEDS,
    WEBHOOK_PATH,
    authenticate,
    payment_intent,
    pending_charge,
    signed_headers,
    stripe_event,
)
from tests.support.polling import eventually
from tests.support.processes import Processes, wait_for_workers
from tests.support.read_models import ALL_MODELS


def _counts(application: Application, order_id: str) -> Counter[str]:
    with application.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT type FROM events WHERE data ->> 'order_id' = :id"), {"id": order_id}
        ).scalars()
        return Counter(rows)


def _until_quiet(name: str) -> None:
    for _ in range(10):
        if set(jobs.catch_up(name).values()) == {0}:
            return
    raise AssertionError(f"{name}'s job kept finding events to apply")


def test_catch_up_and_deadline_jobs_run_twice_change_nothing_the_second_time(
    settings: Settings,
    application: Application,
    processes: Processes,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    figures: dict[str, Any],
) -> None:
    api, _, env = start_api(processes, settings, SWEEP_INTERVAL="1", PAYMENT_TIMEOUT="1")
    api.add_product("MUG-1", amount=1250, stock=10_000)
    headers = api.register("twice@example.com").headers
    orders = [
        api.place(headers, {"MUG-1": 1}, token).body["order_id"]
        for token in [SUCCEEDS] * 12 + [AUTHENTICATION_REQUIRED] * 3 + [DECLINED] * 3
    ]
    # Run the jobs in this process, wired like the workers (the same payment timeout).
    here = bootstrap(replace(settings, payment_timeout=1.0))
    request.addfinalizer(here.close)
    monkeypatch.setattr(jobs, "_served", Jobs(here))

    # The saga job, in this process, until a run finds nothing to do (a partition's run
    # can append stock events that another partition, drained before, passes over next
    # time); then once more: it finds nothing to do.
    assert jobs.catch_up("order_fulfillment")["order_fulfillment"] > 0
    _until_quiet("order_fulfillment")
    # The payments job twice for every order: the first makes the provider call and
    # records its answer, the second finds nothing left to do (or the charge still
    # waiting on 3-D Secure).
    for order_id in orders:
        first = jobs.settle_payment(order_id)
        assert first in ("succeeded", "failed", "pending"), (order_id, first)
        again = jobs.settle_payment(order_id)
        assert again in ("nothing due: succeeded", "nothing due: failed", "still pending"), (
            order_id,
            again,
        )
    _until_quiet("order_fulfillment")
    assert jobs.catch_up("order_fulfillment") == {"order_fulfillment": 0}
    time.sleep(1.2)  # the 3-D Secure payments are now past their deadline
    timed_out = [o for o in orders[12:15] if _counts(application, o)["PaymentPending"]]
    assert len(timed_out) == 3
    for order_id in timed_out:  # the deadline job twice
        assert jobs.payment_deadline(order_id) is True
        assert jobs.payment_deadline(order_id) is False
    for name in ALL_MODELS:  # every read model's job twice
        _until_quiet(name)
        second = jobs.catch_up(name)
        assert set(second.values()) == {0}, (name, second)

    # The same jobs queued twice more (on top of the wake-ups), for real workers.
    for queue_name, names in ((SAGAS, ["order_fulfillment"]), (PROJECTIONS, ALL_MODELS)):
        queue = Queue(queue_name, connection=application.redis)
        for name in names:
            for _ in range(2):
                queue.enqueue(jobs.catch_up, name, result_ttl=0)
        for order_id in timed_out:
            for _ in range(2):
                Queue(SAGAS, connection=application.redis).enqueue(
                    jobs.payment_deadline, order_id, result_ttl=0
                )
    for order_id in orders:  # and the payments jobs, for the payments worker
        for _ in range(2):
            Queue(PAYMENTS, connection=application.redis).enqueue(
                jobs.settle_payment, order_id, result_ttl=0
            )
    workers = [processes.worker(env) for _ in range(2)]
    wait_for_workers(settings.require()[1], workers)
    settled(application, timeout=60)

    for order_id in timed_out:
        counts = _counts(application, order_id)
        assert (counts["OrderCancelled"], counts["InventoryReleased"]) == (1, 1), counts
    audit = assert_sagas_exactly_once(application)
    assert_read_models_equal_rebuild(application)
    assert audit.confirmed == 12 and audit.cancelled == 6
    figures.update(
        orders=audit.orders,
        jobs_run_twice=1 + len(ALL_MODELS) + len(timed_out) + len(orders),
        jobs_queued_twice=2 * (1 + len(ALL_MODELS) + len(timed_out) + len(orders)),
    )


def _post_webhook(api: ApiClient, secret: str, body: bytes) -> Reply:
    """Deliver a Stripe event as Stripe does: the raw body, signed (Stripe-Signature)."""
    return call("POST", api.base_url + WEBHOOK_PATH, body, signed_headers(secret, body))


def test_the_same_payment_webhook_delivered_again_and_at_once_completes_the_payment_once(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    # Only this test delivers webhooks (the session's local Stripe has none registered),
    # and nothing looks the pending charges up again meanwhile (no reconciliation).
    api, _, env = start_api(
        processes, settings, SWEEP_INTERVAL="1", PAYMENT_TIMEOUT="60", PAYMENT_RECONCILE_AFTER="600"
    )
    api.add_product("MUG-1", amount=1250, stock=10_000)
    headers = api.register("hook@example.com").headers
    workers = [processes.worker(env) for _ in range(2)]
    wait_for_workers(settings.require()[1], workers + processes.payments_workers)
    orders = [
        api.place(headers, {"MUG-1": 1}, AUTHENTICATION_REQUIRED).body["order_id"] for _ in range(2)
    ]

    def pending() -> None:
        for order_id in orders:
            assert _counts(application, order_id)["PaymentPending"] == 1

    eventually(pending, timeout=30)
    # The customers complete 3-D Secure: Stripe sends payment_intent.succeeded for each.
    intents = [pending_charge(application.engine, order_id) for order_id in orders]
    for intent in intents:
        assert authenticate(settings, intent)["status"] == "succeeded"
    succeeded = [payment_intent(settings, intent) for intent in intents]
    secret = settings.require_stripe()[1]
    # Delivered, then delivered again (the provider retries after a lost answer).
    again = stripe_event("payment_intent.succeeded", succeeded[0], "evt_again")
    replies = [_post_webhook(api, secret, again) for _ in range(3)]
    assert [(r.status, r.body["status"]) for r in replies] == [
        (200, "accepted"),
        (200, "duplicate"),
        (200, "duplicate"),
    ], [r.body for r in replies]
    # Delivered by eight connections at the same moment.
    at_once_event = stripe_event("payment_intent.succeeded", succeeded[1], "evt_at_once")
    at_once: list[Reply] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def deliver(_: int) -> None:
        barrier.wait(timeout=10)
        reply = _post_webhook(api, secret, at_once_event)
        with lock:
            at_once.append(reply)

    run_threads(8, deliver)
    assert sorted(r.status for r in at_once) == [200] * 8, [(r.status, r.body) for r in at_once]
    assert Counter(r.body["status"] for r in at_once) == {"accepted": 1, "duplicate": 7}
    settled(application, timeout=60)
    # A new event id about a payment that has moved on is recorded and changes nothing.
    events = event_count(application)
    failed = dict(succeeded[0], status="requires_payment_method")
    failed["last_payment_error"] = {"code": "card_declined", "decline_code": "generic_decline"}
    late = _post_webhook(
        api, secret, stripe_event("payment_intent.payment_failed", failed, "evt_other")
    )
    assert (late.status, late.body["status"]) == (200, "ignored"), late.body
    assert late.body["reason"] == "payment_settled", late.body
    settled(application, timeout=60)
    assert event_count(application) == events

    for order_id in orders:
        counts = _counts(application, order_id)
        assert counts["PaymentSucceeded"] == counts["OrderConfirmed"] == 1, counts
    with application.engine.connect() as conn:
        inbox = conn.execute(text("SELECT count(*) FROM payment_webhook_inbox")).scalar_one()
    assert inbox == 3
    assert_sagas_exactly_once(application)
    assert_read_models_equal_rebuild(application)
    figures.update(
        deliveries=len(replies) + len(at_once) + 1, payments_completed=2, inbox_rows=inbox
    )


def test_an_idempotency_key_sent_again_and_at_once_places_one_order(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    api, _, env = start_api(processes, settings, SWEEP_INTERVAL="1", PAYMENT_TIMEOUT="10")
    api.add_product("MUG-1", amount=1250, stock=10_000)
    headers = api.register("retry@example.com").headers
    workers = [processes.worker(env)]
    wait_for_workers(settings.require()[1], workers)

    first = api.place(headers, {"MUG-1": 2}, key="key-1")
    again = api.place(headers, {"MUG-1": 2}, key="key-1")
    assert (first.status, again.status) == (202, 202)
    assert again.body == first.body
    changed = api.place(headers, {"MUG-1": 3}, key="key-1")
    assert changed.status == 422, changed.body
    assert changed.body["type"] == "/problems/command-id-reused"

    at_once: list[Reply] = []
    lock = threading.Lock()
    barrier = threading.Barrier(10)

    def retry(_: int) -> None:
        barrier.wait(timeout=10)
        reply = api.place(headers, {"MUG-1": 1}, key="key-2")
        with lock:
            at_once.append(reply)

    run_threads(10, retry)
    assert [r.status for r in at_once] == [202] * 10, [(r.status, r.body) for r in at_once]
    assert len({r.body["order_id"] for r in at_once}) == 1
    assert len({r.body["consistency_token"] for r in at_once}) == 1
    settled(application, timeout=60)

    log = whole_log(application)
    placed = Counter(r.data["order_id"] for r in log if r.type == "OrderPlaced")
    assert placed == {first.body["order_id"]: 1, at_once[0].body["order_id"]: 1}
    audit = assert_sagas_exactly_once(application)
    assert audit.confirmed == 2
    assert_read_models_equal_rebuild(application)
    figures.update(requests=3 + len(at_once), orders=audit.orders)
