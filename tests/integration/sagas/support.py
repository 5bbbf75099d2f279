"""Shared by the saga's integration tests: a small shop on the real command bus, the saga
driven in-process through its RQ job function, and whole-table snapshots to compare."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import text

import config.jobs
from config.bootstrap import Container
from inventory.commands import AddProduct
from kernel.command_bus import CommandBus
from kernel.messages import Command, new_id
from kernel.money import Money
from kernel.results import Success
from orders.commands import CancelOrder, OrderLineRequest, PlaceOrder, RegisterCustomer, ShipOrder
from orders.domain import customer_id_for
from orders.events import Address
from projections import generations
from sagas.order_fulfillment import NAME

T = TypeVar("T")

ADDRESS = Address("Ada Lovelace", "12 St James's Square", "London", "SW1Y 4JH", "GB")


class Shop:
    """What customers and the admin do through the API, as commands; each must succeed."""

    def __init__(self, bus: CommandBus) -> None:
        self.bus = bus

    def do(self, command: Command) -> Success:
        result = self.bus.dispatch(command)
        assert isinstance(result, Success), f"{command} -> {result}"
        return result

    def add_product(self, sku: str, stock: int, amount: int = 1250) -> None:
        self.do(AddProduct(sku, f"Product {sku}", Money(amount, "EUR"), stock))

    def customer(self, email: str) -> str:
        customer_id = customer_id_for(email)
        self.do(RegisterCustomer(customer_id, email, "A Customer"))
        return customer_id

    def place(self, customer_id: str, lines: Mapping[str, int], token: str) -> str:
        order_id = new_id()
        requested = tuple(OrderLineRequest(sku, quantity) for sku, quantity in lines.items())
        self.do(PlaceOrder(order_id, customer_id, requested, ADDRESS, token))
        return order_id

    def ship(self, order_id: str) -> None:
        self.do(ShipOrder(order_id, f"TRACK-{order_id[:8]}"))

    def cancel_as_customer(self, order_id: str, customer_id: str) -> None:
        self.do(CancelOrder(order_id, "changed my mind", "customer", customer_id))


def eventually(check: Callable[[], T], timeout: float = 20, interval: float = 0.01) -> T:
    """`check()`'s value once it stops failing its assertions; its last failure at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)


def settle(container: Container) -> None:
    """Run the saga's catch-up job (as a worker would) until it has applied the whole log
    and a further run appends nothing: every command it issued has had its effect."""

    def settled() -> None:
        before = count(container, "events")
        config.jobs.catch_up(NAME)
        (status,) = container.runner.status([container.saga])
        assert status.last_error is None, status.last_error
        assert (status.state, status.lag_events) == ("caught_up", 0), status
        assert status.checkpoint == status.head
        assert count(container, "events") == before

    eventually(settled)


def count(container: Container, table: str) -> int:
    with container.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def rows(container: Container, query: str) -> list[dict[str, Any]]:
    with container.engine.connect() as conn:
        return [dict(row) for row in conn.execute(text(query)).mappings()]


def sagas(container: Container) -> dict[str, dict[str, Any]]:
    """Every saga row, whole (state, data, deadline, last checkpoint, history, timestamps)."""
    found = rows(container, "SELECT * FROM order_fulfillment_sagas ORDER BY order_id")
    return {row["order_id"]: row for row in found}


def order_events(container: Container, order_id: str) -> list[str]:
    with container.engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT type FROM events WHERE data ->> 'order_id' = :id"
                    " ORDER BY transaction_id, position"
                ),
                {"id": order_id},
            ).scalars()
        )


def event_data(container: Container, order_id: str, event_type: str) -> dict[str, Any]:
    with container.engine.connect() as conn:
        data: dict[str, Any] = conn.execute(
            text("SELECT data FROM events WHERE data ->> 'order_id' = :id AND type = :type"),
            {"id": order_id, "type": event_type},
        ).scalar_one()
    return data


def available(container: Container) -> dict[str, int]:
    with container.engine.connect() as conn:
        active = generations.read(conn, "catalog").active
        found = conn.execute(
            text("SELECT sku, available FROM catalog_products WHERE generation = :g"),
            {"g": active},
        ).all()
    return {sku: int(quantity) for sku, quantity in found}
