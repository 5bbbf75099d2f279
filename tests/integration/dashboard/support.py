"""Shared by the dashboard tests: placing orders through the API,
catching the saga and the read models up in-process, and signing in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import text

from config import jobs
from config.bootstrap import Application
from kernel.subscriptions import Subscriber
from tests.support.api_client import Customer
from tests.support.payments import settle_payments
from tests.support.polling import eventually
from tests.support.shop import ADDRESS_DATA

PAGES = (
    "/admin/orders",
    "/admin/sales",
    "/admin/projections",
    "/admin/sagas",
    "/admin/inventory",
    "/admin/pricing/taxes",
)


@dataclass(frozen=True)
class Placed:
    order_id: str
    customer: Customer


def place(
    client: FlaskClient,
    customer: Customer,
    lines: dict[str, int],
    token: str = "pm_card_visa",
) -> Placed:
    body = {
        "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines.items()],
        "shipping_address": ADDRESS_DATA,
        "payment": {"token": token},
    }
    response = client.post("/api/orders", json=body, headers=customer.headers)
    assert response.status_code == 202, response.get_json()
    return Placed(response.get_json()["order_id"], customer)


def settle(application: Application, timeout: float = 30) -> None:
    """Run the saga and every read model until none lags behind the log, as the
    workers would (the caller has had `config.jobs` serve this application).

    Lag, not "nothing applied", decides: a writing transaction elsewhere on the
    server can hold the readable end of the log back for a moment.
    """
    assert jobs._served is not None and jobs._served.application is application
    names = [application.saga.name, *application.read_side.projections]

    def caught_up() -> None:
        for name in names:
            jobs.catch_up(name)
        settle_payments(application)
        subscribers: list[Subscriber] = [application.saga]
        for name in application.read_side.projections:
            subscribers += application.read_side.subscribers(name)
        statuses = application.runner.status(subscribers)
        assert all(status.lag_events == 0 for status in statuses), (
            "the subscriptions did not catch up"
        )

    eventually(caught_up, timeout=timeout, interval=0.05)


def csrf(client: FlaskClient) -> str:
    with client.session_transaction() as session:
        token = session.get("csrf")
    if token is None:
        client.get("/admin/login")
        with client.session_transaction() as session:
            token = session["csrf"]
    assert isinstance(token, str)
    return token


def sign_in(client: FlaskClient, token: str) -> Any:
    return client.post("/admin/login", data={"token": token, "csrf_token": csrf(client)})


def text_of(html: str) -> str:
    """The page's visible text, whitespace collapsed (good enough for assertions)."""
    without_tags = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"\s+", " ", without_tags)


def events_of(application: Application, order_id: str, event_type: str) -> list[dict[str, Any]]:
    """The order's events of `event_type`, in log order, with their metadata."""
    with application.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT data, metadata FROM events WHERE type = :type"
                " AND data ->> 'order_id' = :id ORDER BY position"
            ),
            {"type": event_type, "id": order_id},
        ).all()
    return [{"data": row[0], "metadata": row[1]} for row in rows]


def event_count(application: Application) -> int:
    with application.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())


def actions_of(html: str) -> list[str]:
    """The actions an order page offers (its forms' data-action)."""
    return re.findall(r'data-action="(\w+)"', html)
