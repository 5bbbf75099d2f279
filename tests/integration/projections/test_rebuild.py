"""A rebuild replays the log into a new generation that equals the incrementally kept one;
queries answer from the old generation until the switch, then from the new one."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask.testing import FlaskClient

from config.bootstrap import Application
from kernel.event_store import START
from tests.integration.projections.mixed_orders import mixed_orders
from tests.support.event_log import whole_log
from tests.support.leases import let_go, sole_lease
from tests.support.read_models import ALL_MODELS, contents, drain, is_empty
from tests.support.shop import Shop


def _answers(client: FlaskClient, headers: dict[str, str], order_id: str) -> dict[str, Any]:
    """What the query endpoints say, freshness aside."""
    start, end = date.today() - timedelta(days=300), date.today() + timedelta(days=2)
    paths = {
        "catalog": "/api/products",
        "order_list": "/admin/api/orders?limit=100",
        "order_detail": f"/admin/api/orders/{order_id}",
        "sales_analytics": f"/admin/api/analytics/sales?from={start}&to={end}",
        "top_products": "/admin/api/analytics/top-products?limit=100",
    }
    found = {}
    for name, path in paths.items():
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.get_json())
        body = response.get_json()
        del body["read_model"]
        found[name] = body
    return found


def _projection(client: FlaskClient, headers: dict[str, str], name: str) -> dict[str, Any]:
    response = client.get("/admin/api/projections", headers=headers)
    assert response.status_code == 200
    (found,) = [p for p in response.get_json()["projections"] if p["name"] == name]
    return dict(found)


def test_every_read_model_rebuilt_from_zero_equals_the_one_kept_incrementally(
    application: Application, shop: Shop, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    scenario = mixed_orders(
        shop, count=300, seed=20_240_611, every=97, then=lambda: drain(application)
    )
    some_order = scenario.orders[0].order.order_id
    before = _answers(client, admin_headers, some_order)
    assert len(before["order_list"]["items"]) == 100
    assert before["sales_analytics"]["days"] and before["top_products"]["items"]

    for name in ALL_MODELS:
        events = len(whole_log(application))
        response = client.post(f"/admin/api/projections/{name}/rebuild", headers=admin_headers)
        assert response.status_code == 202
        assert response.get_json() == {"name": name, "generation": 2}

        # Half-way through the replay, queries still answer from generation 1.
        building = application.read_side.projection(name).subscriber(2)
        with application.engine.connect() as conn:
            with conn.begin():
                first_half = application.store.read_all(conn, START, events // 2)
            lease = sole_lease(application, building)
            building.apply(conn, first_half, lease)
            let_go(application, lease)
        status = _projection(client, admin_headers, name)
        assert status["generation"] == 1
        assert status["rebuild"]["subscription"] == f"{name}@2"
        assert status["rebuild"]["lag_events"] == events - events // 2
        assert status["rebuild"]["state"] == "running"
        assert _answers(client, admin_headers, some_order) == before

        # An order placed meanwhile reaches both generations.
        late = shop.place(scenario.customers[0], {"MUG-1": 1})
        for step in (shop.reserve, shop.pay, shop.confirm):
            step(late)
        drain(application, ALL_MODELS)

        # Replayed to the head, generation 2 holds exactly what generation 1 holds.
        old, new = contents(application, name, 1), contents(application, name, 2)
        assert not is_empty(old)
        assert new == old
        before = _answers(client, admin_headers, some_order)

        progress = application.read_side.continue_rebuild(name)
        assert progress.switched and progress.error is None
        assert application.read_side.generations(name).active == 2
        assert application.read_side.generations(name).building is None
        assert is_empty(contents(application, name, 1)), "the old generation was not purged"
        assert contents(application, name, 2) == old
        status = _projection(client, admin_headers, name)
        assert (status["generation"], status["rebuild"], status["state"]) == (2, None, "caught_up")
        assert _answers(client, admin_headers, some_order) == before
