"""An email is registered once, however registrations of it race: the account's claim on
the email is made in the registering command's own transaction, against a unique index,
so a concurrent registration waits for the first one's outcome instead of reading a
read model that lags behind it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import text

from config.bootstrap import Application
from kernel.messages import new_id
from kernel.results import Failure, Result, Success
from orders.accounts import email_digest
from orders.commands import RegisterCustomer
from tests.support.shop import PASSWORD, PASSWORD_HASH
from tests.support.state import row_count

RACERS = 8


def _registrations(application: Application) -> tuple[int, int]:
    """How many customers registered (events) and accounts exist."""
    with application.engine.connect() as conn:
        events = conn.execute(
            text("SELECT count(*) FROM events WHERE type = 'CustomerRegistered'")
        ).scalar_one()
    return int(events), row_count(application.engine, "customer_accounts")


def test_registrations_of_one_email_racing_through_the_bus_make_one_customer(
    application: Application,
) -> None:
    start = threading.Barrier(RACERS)

    def register(n: int) -> Result:
        command = RegisterCustomer(new_id(), f"  Ada@Example.com{' ' * n}", "Ada", PASSWORD_HASH)
        start.wait()  # every racer's password is hashed: they reach the database together
        return application.bus.dispatch(command)

    with ThreadPoolExecutor(RACERS) as pool:
        results = list(pool.map(register, range(RACERS)))

    assert sum(isinstance(result, Success) for result in results) == 1
    refused = [result for result in results if isinstance(result, Failure)]
    assert {result.code for result in refused} == {"email_taken"}
    assert len(refused) == RACERS - 1
    assert _registrations(application) == (1, 1)


def test_registrations_of_one_email_racing_through_the_api_make_one_account(
    app: Flask, application: Application
) -> None:
    start = threading.Barrier(RACERS)

    def register(n: int) -> int:
        client = app.test_client()
        body = {"email": "grace@example.com", "name": f"Grace {n}", "password": PASSWORD}
        start.wait()
        return client.post("/api/customers", json=body).status_code

    with ThreadPoolExecutor(RACERS) as pool:
        statuses = sorted(pool.map(register, range(RACERS)))

    assert statuses == [201] + [409] * (RACERS - 1)
    assert _registrations(application) == (1, 1)
    assert row_count(application.engine, "customer_sessions") == 1


@pytest.mark.parametrize(("holder_commits", "expected"), [(True, "refused"), (False, "registered")])
def test_a_registration_waits_for_a_claim_under_way_and_follows_its_outcome(
    application: Application,
    count_events: Callable[[str], int],
    holder_commits: bool,
    expected: str,
) -> None:
    """Another transaction has claimed the email and not yet committed: the registration
    waits on the unique index, then is refused if that claim commits and goes through if
    it rolls back (never a lost registration, never two)."""
    claim = text(
        "INSERT INTO customer_accounts (customer_id, email_digest, password_hash)"
        " VALUES (:customer, :email, 'x')"
    )
    with application.engine.connect() as holder, ThreadPoolExecutor(1) as pool:
        holder.execute(claim, {"customer": new_id(), "email": email_digest("ada@example.com")})
        racing = pool.submit(
            application.bus.dispatch,
            RegisterCustomer(new_id(), "ada@example.com", "Ada", PASSWORD_HASH),
        )
        time.sleep(0.5)  # well inside IDLE_IN_TRANSACTION_TIMEOUT (2 s) for the holder
        assert not racing.done(), racing.result()  # waiting for the holder's outcome
        holder.commit() if holder_commits else holder.rollback()
        result = racing.result(timeout=10)

    if expected == "refused":
        assert result == Failure("email_taken", "the email is registered already")
        assert count_events("CustomerRegistered") == 0
    else:
        assert isinstance(result, Success), result
        assert _registrations(application) == (1, 1)
