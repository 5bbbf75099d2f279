"""The payments context against real PostgreSQL and the session's local Stripe.

The local Stripe lives as long as the test session while the database is emptied before
every test: every test pays for orders of its own (`new_id()`), so that no idempotency
key (`payment-<order>-charge-<n>`) is ever used by two tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import stripe
from flask.testing import FlaskClient
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import text
from werkzeug.test import TestResponse

from config.bootstrap import Application
from config.queues import PAYMENTS
from config.settings import Settings
from kernel.event_store import RecordedEvent
from kernel.messages import Event, new_id
from kernel.money import Money
from kernel.results import Success
from payments.commands import ProcessPayment
from payments.domain import Payment
from payments.events import PaymentSucceeded
from payments.stripe_gateway import StripeGateway
from tests.support import payments as payments_support

EUR_10 = Money(1000, "EUR")
WEBHOOK_URL = "/webhooks/stripe"


@pytest.fixture
def order_id() -> str:
    """An order no other test (and no earlier run against this local Stripe) pays for."""
    return f"o-{new_id()}"


@pytest.fixture(scope="session")
def stripe_client(settings: Settings) -> stripe.StripeClient:
    """The local Stripe as the SDK sees it, to look at what the shop did there."""
    return payments_support.stripe_client(settings)


@pytest.fixture(scope="session")
def gateway(settings: Settings, stripe_url: str) -> StripeGateway:
    assert settings.stripe_api_key is not None
    return StripeGateway(settings.stripe_api_key, stripe_url, connect_timeout=1, read_timeout=5)


# --- the payment's log ---------------------------------------------------------------


def payment_history(application: Application, order_id: str) -> list[RecordedEvent]:
    with application.engine.connect() as conn:
        return application.store.read_stream(conn, Payment.stream_for(order_id))


def payment_events(application: Application, order_id: str) -> list[Event]:
    return [recorded.event for recorded in payment_history(application, order_id)]


def request_payment(
    application: Application, order_id: str, payment_method: str, amount: Money = EUR_10
) -> None:
    result = application.bus.dispatch(ProcessPayment(order_id, amount, payment_method))
    assert isinstance(result, Success), result


def settle(application: Application, order_id: str) -> str:
    """Make the provider call the payment waits on, as its payments worker job does."""
    return application.provider_calls.settle(order_id)


def paid(application: Application, order_id: str) -> PaymentSucceeded:
    """The order's payment, charged at the provider and recorded."""
    request_payment(application, order_id, "pm_card_visa")
    assert settle(application, order_id) == "succeeded"
    succeeded = payment_events(application, order_id)[-1]
    assert isinstance(succeeded, PaymentSucceeded)
    return succeeded


def provider_row(application: Application, order_id: str) -> dict[str, Any] | None:
    """The payment's row in provider_payments, with `waiting` for awaiting_since set."""
    with application.engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT reference, status, call_key, awaiting_since IS NOT NULL AS waiting"
                    " FROM provider_payments WHERE order_id = :order"
                ),
                {"order": order_id},
            )
            .mappings()
            .one_or_none()
        )
    return None if row is None else dict(row)


# --- the payments workers' queue ----------------------------------------------------


def queued_calls(application: Application) -> list[str]:
    """The ids of the jobs on the payments queue, in order."""
    return Queue(PAYMENTS, connection=application.redis).job_ids


def job_of(application: Application, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=application.redis)
    except NoSuchJobError:
        return None


# --- the local Stripe ----------------------------------------------------------------


def intents_of(client: stripe.StripeClient, order_id: str) -> list[dict[str, Any]]:
    """Every PaymentIntent at the provider that pays the order (by its metadata)."""
    listed = client.v1.payment_intents.list(params={"limit": 100})
    return [
        intent.to_dict()
        for intent in listed.auto_paging_iter()
        if (intent.to_dict().get("metadata") or {}).get("order_id") == order_id
    ]


def refunds_of(client: stripe.StripeClient, intent_id: str) -> list[dict[str, Any]]:
    listed = client.v1.refunds.list(params={"payment_intent": intent_id, "limit": 100})
    return [refund.to_dict() for refund in listed.auto_paging_iter()]


# --- webhooks ------------------------------------------------------------------------


def post_webhook(
    client: FlaskClient, body: bytes, header: str | None, content_type: str = "application/json"
) -> TestResponse:
    headers = {} if header is None else {"Stripe-Signature": header}
    return client.post(WEBHOOK_URL, data=body, content_type=content_type, headers=headers)


# --- providers that do not answer ----------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class SilentServer:
    """Takes connections on a local port and never answers a byte."""

    port: int
    connections: int = 0


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(0.05)
        server = SilentServer(listener.getsockname()[1])
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    continue
                accepted.append(connection)
                server.connections += 1

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        yield server
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()


def unanswered(url: str, settings: Settings) -> StripeGateway:
    """A gateway to `url` that gives up after a quarter of a second."""
    assert settings.stripe_api_key is not None
    return StripeGateway(settings.stripe_api_key, url, connect_timeout=0.25, read_timeout=0.25)
