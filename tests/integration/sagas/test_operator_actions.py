"""What an operator sees of the sagas and does with one: stuck means at any step longer
than that step's bound; a saga says why it was compensated; a step is retried, or the
order cancelled (the admin's CancelOrder) and the saga compensates."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from config.bootstrap import Application
from orders.events import OrderPlaced
from sagas.order_fulfillment import Decision
from tests.integration.sagas.support import available, order_events, settle
from tests.support.payments import AUTHENTICATION_REQUIRED
from tests.support.shop import Shop


@pytest.fixture
def shop(application: Application) -> Shop:
    shop = Shop(application.bus, application.provider_calls)
    shop.add_product("MUG-1", stock=10)
    return shop


def sagas(client: FlaskClient, headers: dict[str, str], **query: str) -> dict[str, Any]:
    reply = client.get("/admin/api/sagas", headers=headers, query_string=query)
    assert reply.status_code == 200, reply.get_json()
    return dict(reply.get_json())


def one(client: FlaskClient, headers: dict[str, str], order_id: str) -> dict[str, Any]:
    found = [s for s in sagas(client, headers, limit="200")["items"] if s["order_id"] == order_id]
    assert len(found) == 1, found
    return dict(found[0])


def age_step(application: Application, order_id: str, seconds: int) -> None:
    with application.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE order_fulfillment_sagas"
                " SET step_entered_at = now() - make_interval(secs => :s) WHERE order_id = :id"
            ),
            {"s": seconds, "id": order_id},
        )


def metric(client: FlaskClient, name: str, labels: str) -> float:
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.split()[-1])
    raise AssertionError(f"{name}{{{labels}}} is not exported")


def test_a_saga_whose_reservation_was_lost_is_stuck_at_reserving_and_a_retry_fulfils_it(
    jobs: None,
    application: Application,
    shop: Shop,
    client: FlaskClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decide = application.saga.decide
    real_start = decide.start

    def start_losing_the_command(event: OrderPlaced) -> Decision:
        started = real_start(event)
        return Decision(started.state, [], started.note)  # as if ReserveInventory was lost

    ada = shop.customer("ada@example.com")
    with monkeypatch.context() as patched:
        patched.setattr(decide, "start", start_losing_the_command)
        order = shop.place(ada, {"MUG-1": 2})
        settle(application)
    bound = application.settings.saga_step_bounds["reserving"]
    assert one(client, admin_headers, order.order_id)["stuck"] is False
    assert metric(client, "shop_sagas_stuck", 'step="reserving"') == 0

    age_step(application, order.order_id, int(bound) + 5)

    listed = sagas(client, admin_headers, state="stuck")
    (stuck,) = listed["items"]
    assert (stuck["order_id"], stuck["step"], stuck["stuck"]) == (order.order_id, "reserving", True)
    assert stuck["at_step_seconds"] > bound == stuck["step_bound_seconds"]
    assert listed["counts"]["stuck"] == 1
    assert listed["step_bounds"] == application.settings.saga_step_bounds
    assert metric(client, "shop_sagas_stuck", 'step="reserving"') == 1
    assert metric(client, "shop_sagas_stuck", 'step="paying"') == 0

    retried = client.post(f"/admin/api/sagas/{order.order_id}/retry", headers=admin_headers)

    assert retried.status_code == 200, retried.get_json()
    assert retried.get_json()["commands"] == ["ReserveInventory ok"]
    settle(application)
    saga = one(client, admin_headers, order.order_id)
    assert (saga["state"], saga["step"], saga["stuck"]) == ("completed", "awaiting_shipment", False)
    assert [m["trigger"] for m in saga["history"]][:2] == [
        "OrderPlaced",
        "retry by admin:bootstrap",
    ]
    assert order_events(application, order.order_id)[-1] == "OrderConfirmed"
    assert available(application) == {"MUG-1": 8}
    nothing = client.post(f"/admin/api/sagas/{order.order_id}/retry", headers=admin_headers)
    assert nothing.status_code == 409, nothing.get_json()


def test_an_order_cancelled_by_the_admin_while_its_saga_waits_on_the_payment_is_compensated(
    jobs: None,
    application: Application,
    shop: Shop,
    client: FlaskClient,
    admin_headers: dict[str, str],
) -> None:
    ada = shop.customer("ada@example.com")
    order = shop.place(ada, {"MUG-1": 3}, AUTHENTICATION_REQUIRED)  # pending on 3-D Secure
    settle(application)
    assert one(client, admin_headers, order.order_id)["step"] == "paying"
    assert available(application) == {"MUG-1": 7}
    url = f"/admin/api/orders/{order.order_id}/cancel"  # the admin API's one cancel

    cancelled = client.post(url, headers=admin_headers, json={"reason": "customer called"})

    assert cancelled.status_code == 202, cancelled.get_json()
    settle(application)
    saga = one(client, admin_headers, order.order_id)
    assert (saga["state"], saga["step"]) == ("compensated", "cancelled")
    assert saga["compensation"] == "cancelled by admin: customer called"
    assert available(application) == {"MUG-1": 10}
    events = order_events(application, order.order_id)
    assert "OrderCancelled" in events and "PaymentCancellationRequested" in events
    retry = client.post(f"/admin/api/sagas/{order.order_id}/retry", headers=admin_headers)
    assert retry.status_code == 409, retry.get_json()  # a cancelled saga has nothing to retry
    compensated = sagas(client, admin_headers, state="compensated")["items"]
    assert [s["compensation"] for s in compensated] == ["cancelled by admin: customer called"]


def test_a_saga_says_why_it_was_compensated(
    jobs: None, application: Application, shop: Shop, client: FlaskClient,
    admin_headers: dict[str, str],
) -> None:  # fmt: skip
    ada = shop.customer("ada@example.com")
    too_many = shop.place(ada, {"MUG-1": 11})
    declined = shop.place(ada, {"MUG-1": 1}, "pm_card_visa_chargeDeclined")
    settle(application)

    assert one(client, admin_headers, too_many.order_id)["compensation"] == "out of stock: MUG-1"
    assert one(client, admin_headers, declined.order_id)["compensation"] == (
        "payment failed: generic_decline"
    )


def test_a_retry_answers_404_for_an_unknown_order_and_needs_the_admin_token(
    client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    url = f"/admin/api/sagas/{missing}/retry"
    assert client.post(url).status_code == 401
    reply = client.post(url, headers=admin_headers)
    assert reply.status_code == 404, reply.get_json()
    assert reply.content_type == "application/problem+json"
