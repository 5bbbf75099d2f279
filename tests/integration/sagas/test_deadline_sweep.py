"""The periodic sweep compensates an order whose payment deadline passed even when the
deadline's scheduled RQ job was lost (Redis flushed), and leaves a deadline that has
not passed alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from rq import Queue
from rq.cron import CronScheduler
from sqlalchemy import text

import config.jobs
from config.bootstrap import Application
from config.queues import PROJECTIONS, SAGAS
from tests.integration.sagas.support import available, order_events, sagas, settle
from tests.support.event_log import event_data
from tests.support.payments import AUTHENTICATION_REQUIRED
from tests.support.shop import Shop
from tests.support.state import row_count


def _scheduled(application: Application, queue: str) -> list[str]:
    ids: list[str] = Queue(queue, connection=application.redis).scheduled_job_registry.get_job_ids()
    return ids


def test_the_sweep_compensates_an_overdue_payment_whose_deadline_job_was_lost(
    jobs: None,
    application: Application,
    client: FlaskClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = Shop(application.bus)
    shop.add_product("MUG-1", stock=10)
    ada = shop.customer("ada@example.com")
    monkeypatch.setattr(application.saga.decide, "payment_timeout", timedelta(0))
    overdue = shop.place(ada, {"MUG-1": 3}, AUTHENTICATION_REQUIRED).order_id
    settle(application)
    monkeypatch.setattr(application.saga.decide, "payment_timeout", timedelta(hours=1))
    waiting = shop.place(ada, {"MUG-1": 2}, AUTHENTICATION_REQUIRED).order_id
    settle(application)
    assert available(application) == {"MUG-1": 5}
    assert sorted(_scheduled(application, SAGAS)) == sorted(
        [f"payment-deadline-{overdue}", f"payment-deadline-{waiting}"]
    )

    application.redis.flushdb()  # every scheduled job is gone, the deadlines' too

    assert _scheduled(application, SAGAS) == []
    with application.engine.begin() as conn:  # paying for longer than its step's bound
        conn.execute(
            text(
                "UPDATE order_fulfillment_sagas SET step_entered_at = now() - interval '1 hour'"
                " WHERE order_id = :id"
            ),
            {"id": overdue},
        )
    stuck = client.get("/admin/api/sagas?state=stuck", headers=admin_headers).get_json()
    assert [item["order_id"] for item in stuck["items"]] == [overdue]
    assert stuck["counts"]["stuck"] == 1
    assert application.saga.overdue() == [overdue]

    config.jobs.sweep()
    settle(application)

    found = sagas(application)
    assert (found[overdue]["state"], found[overdue]["step"]) == ("compensated", "cancelled")
    assert found[overdue]["data"]["timed_out"] is True
    assert found[overdue]["data"]["reservation"] == "released"
    assert found[overdue]["deadline"] is None
    assert (found[waiting]["state"], found[waiting]["step"]) == ("in_progress", "paying")
    assert found[waiting]["deadline"] is not None
    assert order_events(application, overdue)[-5:] == [
        "StockReleased",
        "InventoryReleased",
        "OrderCancelled",
        "PaymentCancellationRequested",  # its 3-D Secure charge, cancelled at Stripe
        "PaymentFailed",
    ]
    assert event_data(application, overdue, "OrderCancelled")["reason"] == "payment timed out"
    assert "OrderCancelled" not in order_events(application, waiting)
    assert available(application) == {"MUG-1": 8}
    assert application.saga.overdue() == []
    stuck = client.get("/admin/api/sagas?state=stuck", headers=admin_headers).get_json()
    assert stuck["items"] == []
    # RQ's cron puts the next sweep on the queue, whatever became of this one: it needs no one.
    cron = CronScheduler(connection=application.redis)
    cron.load_config_from_file("config.cron")
    assert [(job.func_name, job.interval) for job in cron.enqueue_jobs()] == [
        ("config.jobs.sweep", application.settings.sweep_interval)
    ]
    queued = Queue(PROJECTIONS, connection=application.redis).jobs
    assert [job.func_name for job in queued].count("config.jobs.sweep") == 1

    events, before = row_count(application.engine, "events"), sagas(application)
    config.jobs.sweep()
    settle(application)
    assert application.saga.time_out(overdue) is False
    assert row_count(application.engine, "events") == events
    assert sagas(application) == before
