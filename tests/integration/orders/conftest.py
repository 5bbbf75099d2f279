from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.test import TestResponse

from config.bootstrap import Application
from inventory.commands import AddProduct
from kernel.messages import Event
from kernel.money import Money
from kernel.results import Success
from orders.commands import ConfirmOrder
from tests.integration.orders.support import Placer, order_body
from tests.support.api_client import Customer


@pytest.fixture(autouse=True)
def catalog(application: Application) -> None:
    products = [
        AddProduct("MUG-1", "Enamel mug", Money(1250, "EUR"), 100),
        AddProduct("TEE-1", "Logo T-shirt", Money(1999, "EUR"), 100),
        AddProduct("BOOK-1", "Paperback", Money(1500, "GBP"), 100),
    ]
    for product in products:
        assert isinstance(application.bus.dispatch(product), Success)


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
def confirmed_order(application: Application, customer: Customer, place_order: Placer) -> str:
    order_id: str = place_order(customer).get_json()["order_id"]
    assert isinstance(application.bus.dispatch(ConfirmOrder(order_id)), Success)
    return order_id


@pytest.fixture
def stream(application: Application) -> Callable[[str], list[Event]]:
    def read(stream_id: str) -> list[Event]:
        with application.engine.connect() as conn:
            return [recorded.event for recorded in application.store.read_stream(conn, stream_id)]

    return read


@pytest.fixture
def count_events(application: Application) -> Callable[[str], int]:
    def count(event_type: str) -> int:
        with application.engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM events WHERE type = :type"), {"type": event_type}
                ).scalar_one()
            )

    return count
