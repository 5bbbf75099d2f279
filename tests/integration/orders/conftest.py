from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.test import TestResponse

from config.bootstrap import Container
from inventory.commands import AddProduct
from kernel.messages import Event
from kernel.money import Money
from kernel.results import Success
from orders.commands import ConfirmOrder
from tests.integration.orders.support import Placer, order_body
from tests.support.api_client import Customer


@pytest.fixture(autouse=True)
def catalog(container: Container) -> None:
    products = [
        AddProduct("MUG-1", "Enamel mug", Money(1250, "EUR"), 100),
        AddProduct("TEE-1", "Logo T-shirt", Money(1999, "EUR"), 100),
        AddProduct("BOOK-1", "Paperback", Money(1500, "GBP"), 100),
    ]
    for product in products:
        assert isinstance(container.bus.dispatch(product), Success)


@pytest.fixture
def customer(register_customer: Callable[..., Customer]) -> Customer:
    return register_customer()


@pytest.fixture
def place_order(client: FlaskClient) -> Placer:
    def place(
        customer: Customer, body: dict[str, Any] | None = None, **headers: str
    ) -> TestResponse:
        return client.post(
            "/api/orders", json=body or order_body(), headers=customer.headers | headers
        )

    return place


@pytest.fixture
def confirmed_order(container: Container, customer: Customer, place_order: Placer) -> str:
    order_id: str = place_order(customer).get_json()["order_id"]
    assert isinstance(container.bus.dispatch(ConfirmOrder(order_id)), Success)
    return order_id


@pytest.fixture
def stream(container: Container) -> Callable[[str], list[Event]]:
    def read(stream_id: str) -> list[Event]:
        with container.engine.connect() as conn:
            return [recorded.event for recorded in container.store.read_stream(conn, stream_id)]

    return read


@pytest.fixture
def count_events(container: Container) -> Callable[[str], int]:
    def count(event_type: str) -> int:
        with container.engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM events WHERE type = :type"), {"type": event_type}
                ).scalar_one()
            )

    return count
