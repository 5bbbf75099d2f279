from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from config.bootstrap import Application
from kernel.command_bus import CommandBus
from kernel.errors import NoHandler
from kernel.money import Money
from payments.commands import ProcessPayment
from payments.events import PaymentFailed, PaymentPending, PaymentSucceeded
from payments.inbox import PaymentInbox, Receipt
from payments.simulator import post_notification
from payments.webhooks import PaymentNotification, sign, simulated_notification
from tests.integration.payments.conftest import payment_events

EUR_25 = Money(2500, "EUR")
URL = "/webhooks/payments"


@pytest.fixture
def payment_inbox(application: Application) -> PaymentInbox:
    return application.payment_inbox


@pytest.fixture
def secret(application: Application) -> str:
    return application.settings.payment_webhook_secret


@pytest.fixture
def pending_payment(application: Application) -> str:
    application.bus.dispatch(ProcessPayment("o-1", EUR_25, "tok_async"))
    return "o-1"


def post(
    client: FlaskClient, body: bytes, secret: str, *, signed_at: float | None = None
) -> TestResponse:
    header = sign(secret, body, int(time.time() if signed_at is None else signed_at))
    return client.post(
        URL, data=body, content_type="application/json", headers={"Payment-Signature": header}
    )


def inbox_rows(application: Application) -> dict[str, Any]:
    with application.engine.connect() as conn:
        rows = conn.execute(text("SELECT provider_event_id, payload FROM payment_webhook_inbox"))
        return {event_id: payload for event_id, payload in rows}


def test_a_signed_notification_completes_the_pending_payment(
    client: FlaskClient, application: Application, secret: str, pending_payment: str
) -> None:
    body = simulated_notification(pending_payment, provider_event_id="evt_1")

    response = post(client, body, secret)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "accepted"
    assert response.get_json()["consistency_token"]
    pending, succeeded = payment_events(application, pending_payment)
    assert isinstance(pending, PaymentPending)
    assert succeeded == PaymentSucceeded(
        pending_payment, EUR_25, pending.provider_reference, "evt_1"
    )
    assert inbox_rows(application) == {"evt_1": json.loads(body)}


def test_a_repeated_delivery_is_acknowledged_and_changes_nothing(
    client: FlaskClient, application: Application, secret: str, pending_payment: str
) -> None:
    body = simulated_notification(pending_payment, provider_event_id="evt_1")
    post(client, body, secret)

    again = post(client, body, secret)

    assert again.status_code == 200
    assert again.get_json() == {"status": "duplicate"}
    assert len(payment_events(application, pending_payment)) == 2
    assert list(inbox_rows(application)) == ["evt_1"]


def test_a_failed_outcome_fails_the_payment_with_the_reason(
    client: FlaskClient, application: Application, secret: str, pending_payment: str
) -> None:
    body = simulated_notification(pending_payment, "failed", "card_declined", "evt_1")

    response = post(client, body, secret)

    assert response.get_json()["status"] == "accepted"
    assert payment_events(application, pending_payment)[1:] == [
        PaymentFailed(pending_payment, EUR_25, "card_declined", "evt_1")
    ]


def test_the_events_carry_the_provider_as_actor_and_a_command_id_from_the_event_id(
    client: FlaskClient, application: Application, secret: str, pending_payment: str
) -> None:
    post(client, simulated_notification(pending_payment, provider_event_id="evt_1"), secret)

    with application.engine.connect() as conn:
        completed = application.store.read_stream(conn, f"payment-{pending_payment}")[-1]
    assert completed.metadata.actor == "payment-provider"
    expected = PaymentNotification("evt_1", pending_payment, "succeeded").command_id
    assert completed.metadata.causation_id == expected


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda body, secret: sign("not the secret", body, int(time.time())), id="key"),
        pytest.param(lambda body, secret: None, id="missing"),
        pytest.param(lambda body, secret: "t=soon,v1=abc", id="malformed"),
        pytest.param(lambda body, secret: sign(secret, body, int(time.time()) - 3600), id="stale"),
        pytest.param(
            lambda body, secret: sign(
                secret, body.replace(b"succeeded", b"failed"), int(time.time())
            ),
            id="other-body",
        ),
    ],
)
def test_a_notification_without_a_valid_signature_is_refused_and_not_recorded(
    client: FlaskClient,
    application: Application,
    secret: str,
    pending_payment: str,
    header: Any,
) -> None:
    body = simulated_notification(pending_payment, provider_event_id="evt_1")
    value = header(body, secret)
    headers = {} if value is None else {"Payment-Signature": value}

    response = client.post(URL, data=body, content_type="application/json", headers=headers)

    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 401
    assert "WWW-Authenticate" in response.headers
    assert inbox_rows(application) == {}
    assert len(payment_events(application, pending_payment)) == 1


def test_the_signature_is_checked_before_the_body_is_validated(
    client: FlaskClient, application: Application
) -> None:
    response = client.post(URL, json={"id": 1})

    assert response.status_code == 401
    assert "errors" not in response.get_json()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[]", 422),
        (b'{"id": "evt_1"}', 422),
        (
            b'{"id": "evt_1", "type": "payment.refunded", "data": {"order_id": "o-1"},'
            b' "created": 1}',
            422,
        ),
    ],
)
def test_a_signed_but_invalid_body_is_a_client_error_and_not_recorded(
    client: FlaskClient,
    application: Application,
    secret: str,
    pending_payment: str,
    body: bytes,
    status: int,
) -> None:
    response = post(client, body, secret)

    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert inbox_rows(application) == {}
    assert len(payment_events(application, pending_payment)) == 1


def test_field_errors_name_every_bad_field(client: FlaskClient, secret: str) -> None:
    body = b'{"id": "", "type": "payment.refunded", "data": {}}'

    response = post(client, body, secret)

    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"id", "type", "data", "created"}


def test_a_notification_for_an_unknown_order_is_recorded_and_ignored(
    client: FlaskClient, application: Application, secret: str
) -> None:
    body = simulated_notification("o-unknown", provider_event_id="evt_1")

    response = post(client, body, secret)

    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored"
    assert response.get_json()["reason"] == "not_found"
    assert payment_events(application, "o-unknown") == []
    assert list(inbox_rows(application)) == ["evt_1"]
    assert post(client, body, secret).get_json() == {"status": "duplicate"}


def test_a_notification_for_a_payment_that_is_not_pending_is_ignored(
    client: FlaskClient, application: Application, secret: str
) -> None:
    application.bus.dispatch(ProcessPayment("o-1", EUR_25, "tok_visa"))

    response = post(client, simulated_notification("o-1", "failed", "late"), secret)

    assert response.status_code == 200
    assert response.get_json()["reason"] == "payment_not_pending"
    assert len(payment_events(application, "o-1")) == 1


def test_a_second_event_for_a_completed_payment_is_ignored(
    client: FlaskClient, application: Application, secret: str, pending_payment: str
) -> None:
    post(client, simulated_notification(pending_payment, provider_event_id="evt_1"), secret)

    late = post(client, simulated_notification(pending_payment, "failed", None, "evt_2"), secret)

    assert late.get_json()["status"] == "ignored"
    assert len(payment_events(application, pending_payment)) == 2
    assert set(inbox_rows(application)) == {"evt_1", "evt_2"}


def test_concurrent_deliveries_of_one_event_complete_the_payment_once(
    application: Application, payment_inbox: PaymentInbox, pending_payment: str
) -> None:
    notification = PaymentNotification("evt_1", pending_payment, "succeeded")
    barrier = threading.Barrier(4)
    receipts: list[Receipt] = []

    def deliver() -> None:
        barrier.wait()
        receipts.append(payment_inbox.receive(notification, {"id": "evt_1"}))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(receipt.status for receipt in receipts) == ["accepted"] + ["duplicate"] * 3
    assert len(payment_events(application, pending_payment)) == 2


def test_the_inbox_row_and_the_payment_commit_together(
    application: Application, payment_inbox: PaymentInbox, pending_payment: str
) -> None:
    bus_without_handlers = CommandBus(application.engine, application.store)
    notification = PaymentNotification("evt_1", pending_payment, "succeeded")

    with pytest.raises(NoHandler):
        PaymentInbox(bus_without_handlers).receive(notification, {"id": "evt_1"})

    assert inbox_rows(application) == {}
    assert payment_inbox.receive(notification, {"id": "evt_1"}).status == ("accepted")


@pytest.fixture
def live_api(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_the_simulated_provider_completes_an_async_payment_end_to_end(
    application: Application, secret: str, pending_payment: str, live_api: str
) -> None:
    assert post_notification(live_api, secret, pending_payment, provider_event_id="evt_1") == 200
    assert post_notification(live_api, secret, pending_payment, provider_event_id="evt_1") == 200
    assert post_notification(live_api, "wrong secret", pending_payment) == 401

    events = payment_events(application, pending_payment)
    assert [type(event) for event in events] == [PaymentPending, PaymentSucceeded]


def test_the_webhook_is_documented(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"][URL]["post"]

    assert {"200", "401", "422"} <= set(operation["responses"])
    assert "security" not in operation
    assert {"in": "header", "name": "Payment-Signature"}.items() <= operation["parameters"][
        0
    ].items()
    body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/PaymentNotification"}
    assert {"id", "type", "data", "created"} <= set(
        spec["components"]["schemas"]["PaymentNotification"]["properties"]
    )
