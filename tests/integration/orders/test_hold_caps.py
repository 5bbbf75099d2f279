"""A customer's holds are read under the customer's lock: in the same statement when the
lock is free, and after waiting for it, in a statement of its own, when another
placement holds it, so the cap sees what that placement committed."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from config.bootstrap import Application, bootstrap
from config.settings import Settings
from kernel.messages import new_id
from kernel.results import Failure, Success
from kernel.unit_of_work import STREAM_LOCKS
from orders.commands import OrderLineRequest, PlaceOrder
from tests.support.api_client import Customer
from tests.support.shop import ADDRESS


@pytest.fixture
def capped(settings: Settings) -> Iterator[Application]:
    """The shop with the default caps (the suite's settings lift them)."""
    application = bootstrap(
        dataclasses.replace(settings, max_pending_orders=5, max_reserved_units=100)
    )
    yield application
    application.close()


def _placement(customer: Customer, units: int) -> PlaceOrder:
    lines = (OrderLineRequest("MUG-1", units),)
    return PlaceOrder(new_id(), customer.customer_id, lines, ADDRESS, "pm_card_visa")


def _holds(application: Application, customer: Customer) -> int:
    with application.engine.connect() as conn:
        units = conn.execute(
            text("SELECT coalesce(sum(units), 0) FROM order_holds WHERE customer_id = :c"),
            {"c": customer.customer_id},
        ).scalar_one()
    return int(units)


def test_a_free_lock_is_taken_and_the_holds_read_in_one_statement(
    capped: Application, customer: Customer
) -> None:
    first = capped.bus.dispatch(_placement(customer, 60))
    second = capped.bus.dispatch(_placement(customer, 60))  # 120 > 100 units

    assert isinstance(first, Success), first
    assert isinstance(second, Failure) and second.code == "too_many_reserved_units", second
    assert _holds(capped, customer) == 60


@pytest.mark.parametrize(("holder_commits", "expected_units"), [(True, 90), (False, 50)])
def test_a_placement_waits_for_the_customers_lock_and_counts_what_its_holder_committed(
    capped: Application, customer: Customer, holder_commits: bool, expected_units: int
) -> None:
    """Another transaction holds the customer's lock with a hold of 90 units it has not
    committed: a placement of 50 waits, then is refused if that hold commits (140 > 100)
    and goes through if it rolls back."""
    with capped.engine.connect() as holder, ThreadPoolExecutor(1) as pool:
        holder.execute(
            text("SELECT pg_advisory_xact_lock(:ns, hashtext(:lock))"),
            {"ns": STREAM_LOCKS, "lock": f"holds-{customer.customer_id}"},
        )
        holder.execute(
            text("INSERT INTO order_holds (order_id, customer_id, units) VALUES (:o, :c, 90)"),
            {"o": new_id(), "c": customer.customer_id},
        )
        racing = pool.submit(capped.bus.dispatch, _placement(customer, 50))
        time.sleep(0.5)  # well inside IDLE_IN_TRANSACTION_TIMEOUT (2 s) for the holder
        assert not racing.done(), racing.result()
        holder.commit() if holder_commits else holder.rollback()
        result = racing.result(timeout=10)

    if holder_commits:
        assert isinstance(result, Failure) and result.code == "too_many_reserved_units", result
    else:
        assert isinstance(result, Success), result
    assert _holds(capped, customer) == expected_units
