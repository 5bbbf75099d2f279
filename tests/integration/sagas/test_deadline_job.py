"""The payment deadline's own RQ job compensates an unpaid order once the deadline has
passed, without waiting for the periodic sweep (the sweep is the safety net for a lost
job, not the mechanism).

RQ's scheduler and a worker are played in-process with RQ's own code: every tick the
scheduler moves due jobs to the queue (`RQScheduler.enqueue_scheduled_jobs`), and the
worker performs what is queued. The sweep never runs here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from rq import Queue
from rq.scheduler import RQScheduler

import config.jobs
from config.bootstrap import Application
from config.queues import SAGAS
from kernel.messages import utc_now
from tests.integration.sagas.support import order_events, sagas, settle
from tests.support.leases import let_go, sole_lease
from tests.support.payments import AUTHENTICATION_REQUIRED, settle_payments
from tests.support.polling import eventually
from tests.support.shop import Shop


class _LateInASecond:
    """A payment timeout putting the deadline 2-3 s ahead, 0.9 s into a second.

    Real deadlines fall anywhere within a second; pinning this one makes the test
    deterministic. `now + timeout` in the saga comes here (datetime cannot add it).
    """

    def __radd__(self, now: datetime) -> datetime:
        return now.replace(microsecond=0) + timedelta(seconds=2.9)


@pytest.fixture
def scheduler(application: Application) -> Iterator[RQScheduler]:
    scheduler = RQScheduler([SAGAS], connection=application.redis)
    scheduler.acquire_locks()  # type: ignore[no-untyped-call]
    yield scheduler
    scheduler.release_locks()  # type: ignore[no-untyped-call]


def test_the_deadline_job_compensates_an_unpaid_order_at_its_deadline(
    jobs: None,
    application: Application,
    scheduler: RQScheduler,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = Shop(application.bus)
    shop.add_product("MUG-1", stock=10)
    ada = shop.customer("ada@example.com")
    monkeypatch.setattr(application.saga.decide, "payment_timeout", _LateInASecond())
    order_id = shop.place(ada, {"MUG-1": 1}, AUTHENTICATION_REQUIRED).order_id
    settle(application)
    deadline = sagas(application)[order_id]["deadline"]
    assert deadline is not None and deadline > utc_now()
    queue = Queue(SAGAS, connection=application.redis)
    job_id = f"payment-deadline-{order_id}"
    released_at = queue.scheduled_job_registry.get_scheduled_time(job_id)
    ran: list[tuple[str | None, object]] = []

    def compensated() -> None:
        scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]  # RQ's tick
        for queued in queue.get_job_ids():  # a worker performs what is queued
            job = queue.fetch_job(queued)
            queue.remove(queued)
            if job is not None:
                ran.append((job.func_name, job.perform()))
        saga = sagas(application)[order_id]
        assert saga["data"]["timed_out"] is True, (
            f"still {saga['step']} at {utc_now()}: deadline {deadline}, its job due on RQ's"
            f" scheduler from {released_at}; jobs run: {ran}"
        )

    eventually(compensated, timeout=(deadline - utc_now()).total_seconds() + 3, interval=0.05)
    settle(application)

    saga = sagas(application)[order_id]
    assert (saga["state"], saga["step"], saga["data"]["reservation"]) == (
        "compensated",
        "cancelled",
        "released",
    )
    deadline_moment = next(m for m in saga["history"] if m["trigger"] == "payment deadline")
    assert deadline_moment["at"] >= deadline.isoformat()


def test_a_payment_made_before_the_deadline_is_not_timed_out_while_the_saga_lags(
    jobs: None, application: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = Shop(application.bus)
    shop.add_product("MUG-1", stock=10)
    ada = shop.customer("ada@example.com")
    monkeypatch.setattr(application.saga.decide, "payment_timeout", timedelta(milliseconds=300))
    order_id = shop.place(ada, {"MUG-1": 1}, "pm_card_visa").order_id
    # The saga gets as far as asking for the charge (and setting the deadline); the
    # payments worker charges the card at once. Then the saga falls behind (a busy or
    # restarting worker): PaymentSucceeded waits in the log while the deadline passes.
    _saga_through(application, "OrderPlaced")
    _saga_through(application, "InventoryReserved")
    assert order_events(application, order_id)[-1] == "PaymentRequested"
    assert settle_payments(application) == ["succeeded"]
    assert order_events(application, order_id)[-1] == "PaymentSucceeded"
    assert sagas(application)[order_id]["step"] == "paying"
    eventually(
        lambda: _assert_equal(application.saga.overdue(), [order_id]), timeout=5, interval=0.01
    )

    config.jobs.payment_deadline(order_id)  # the deadline's job runs before the saga catches up
    settle(application)

    events = order_events(application, order_id)
    assert "OrderCancelled" not in events, f"paid in time, yet cancelled: {events}"
    assert events[-1] == "OrderConfirmed"
    saga = sagas(application)[order_id]
    assert (saga["state"], saga["step"]) == ("completed", "awaiting_shipment")


def _saga_through(application: Application, event_type: str) -> None:
    """Let the saga handle the log up to and including the next `event_type`, no further
    (once the log shows it: an older transaction still open elsewhere on the server may
    hold it back for a moment)."""

    lease = sole_lease(application, application.saga)

    def handled() -> None:
        with application.engine.connect() as conn:
            after = application.saga.checkpoint(conn)
            with conn.begin():
                batch = application.store.read_all(conn, after, 1000)
            types = [recorded.type for recorded in batch]
            assert event_type in types, f"no {event_type} in the log after {after} yet: {types}"
            application.saga.apply(conn, batch[: types.index(event_type) + 1], lease)

    eventually(handled, timeout=20, interval=0.01)
    let_go(application, lease)


def _assert_equal(found: object, expected: object) -> None:
    assert found == expected, found
