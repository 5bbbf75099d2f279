"""What a query costs: one pooled connection for its freshness check and its reads (the
customer's token is answered by the session cache), no backlog count while the read model is
caught up, and a rebuild switched by another process is read by the next query (the
generation each process remembers is only a guess)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, event

from config.bootstrap import Application, read_models
from projections.read_side import ReadSide
from tests.support.api_client import Customer
from tests.support.event_log import event_count
from tests.support.read_models import contents, drain, is_empty
from tests.support.shop import CATALOG, Shop


class Traffic:
    def __init__(self) -> None:
        self.checkouts = 0
        self.statements: list[str] = []


@contextmanager
def traffic(engine: Engine) -> Iterator[Traffic]:
    """Pool checkouts and statements on `engine` while the block runs."""
    seen = Traffic()

    def checkout(*_: Any) -> None:
        seen.checkouts += 1

    def executing(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.statements.append(" ".join(statement.split()))

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "before_cursor_execute", executing)
    try:
        yield seen
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "before_cursor_execute", executing)


def _counts(statements: list[str]) -> int:
    return sum("count(*)" in statement for statement in statements)


@pytest.fixture
def ada(shop: Shop, register_customer: Callable[..., Customer]) -> Customer:
    shop.add_products(CATALOG)
    return register_customer()


@pytest.mark.parametrize("path", ["/api/orders", "/api/orders/{order_id}"])
def test_a_caught_up_query_takes_one_connection_and_counts_no_backlog(
    application: Application, shop: Shop, client: FlaskClient, ada: Customer, path: str
) -> None:
    order = shop.place(ada.customer_id, {"MUG-1": 1})
    drain(application)
    url = path.format(order_id=order.order_id)
    assert client.get(url, headers=ada.headers).status_code == 200  # the generation is known

    with traffic(application.engine) as seen:
        response = client.get(url, headers=ada.headers)

    assert response.status_code == 200
    assert response.headers["X-Read-Model-Lag"] == "0"
    # The customer's bearer token was looked up by the first request and is now answered
    # from the session cache in Redis; the query's statements share one connection.
    queries = seen.statements
    assert not [statement for statement in queries if "FROM customer_sessions" in statement]
    assert seen.checkouts == 1
    assert _counts(queries) == 0
    # order_list: the head of the log; order_detail: generation and checkpoint, head, document
    assert len(queries) == (1 if path == "/api/orders" else 3), queries


@pytest.mark.parametrize("path", ["/api/orders", "/api/orders/{order_id}"])
def test_a_query_behind_the_log_counts_its_backlog(
    application: Application, shop: Shop, client: FlaskClient, ada: Customer, path: str
) -> None:
    order = shop.place(ada.customer_id, {"MUG-1": 1})
    drain(application)
    caught_up = event_count(application)
    shop.reserve(order)  # no worker runs: the read models stay behind by these events
    shop.pay(order)
    behind = event_count(application) - caught_up
    url = path.format(order_id=order.order_id)

    with traffic(application.engine) as seen:
        response = client.get(url, headers=ada.headers)

    assert response.status_code == 200
    assert response.headers["X-Read-Model-Lag"] == str(behind)
    assert response.get_json()["read_model"]["lag_events"] == behind > 0
    assert float(response.headers["X-Read-Model-Lag-Seconds"]) > 0
    assert "X-Read-Model-Stale" not in response.headers
    assert _counts(seen.statements) == 1


@pytest.mark.parametrize("name", ["order_detail", "order_list"])
def test_a_rebuild_switched_by_another_process_is_read_by_the_next_query(
    application: Application, shop: Shop, client: FlaskClient, ada: Customer, name: str
) -> None:
    orders = [shop.place(ada.customer_id, {"MUG-1": quantity}) for quantity in (1, 2)]
    drain(application)
    path = "/api/orders" if name == "order_list" else f"/api/orders/{orders[0].order_id}"
    before = client.get(path, headers=ada.headers).get_json()  # this process knows gen. 1

    elsewhere = ReadSide(  # a worker process, with a read side of its own
        application.engine,
        application.store,
        application.runner,
        read_models(application.settings, application.redis),
    )
    elsewhere.start_rebuild(name)
    assert elsewhere.continue_rebuild(name).switched
    assert is_empty(contents(application, name, 1))

    response = client.get(path, headers=ada.headers)
    assert response.status_code == 200
    assert response.get_json() == before
    assert application.read_side.freshness(name).generation == 2


def test_pages_of_the_order_list_hold_every_order_once_and_end_without_a_cursor(
    application: Application, shop: Shop, client: FlaskClient, ada: Customer
) -> None:
    orders = [shop.place(ada.customer_id, {"MUG-1": 1}) for _ in range(5)]
    drain(application)
    newest_first = [order.order_id for order in reversed(orders)]
    for limit in (1, 2, 4, 5, 6):
        seen: list[str] = []
        cursor = ""
        while True:
            response = client.get(f"/api/orders?limit={limit}{cursor}", headers=ada.headers)
            page = response.get_json()
            seen += [item["order_id"] for item in page["items"]]
            if page["next_cursor"] is None:
                break
            assert len(page["items"]) == limit
            cursor = f"&cursor={page['next_cursor']}"
        assert seen == newest_first, limit
