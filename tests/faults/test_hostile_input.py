"""Scenario 7c: hostile input the fuzzer does not generate (issue 14). Lone UTF-16
surrogates (as JSON escapes) in every text field, JSON nested deeper than a recursive
parser can go, integers of thousands of digits: each body is a 4xx problem+json, never a
5xx, and nothing is written. A surrogate's bytes in a query string, a path or a header
never reach the application as a surrogate: no 5xx there either."""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text

from config.bootstrap import Application
from config.settings import Settings
from tests.faults.support import start_api
from tests.support.api_client import Reply, call
from tests.support.event_log import event_count
from tests.support.payments import WEBHOOK_PATH, signed_headers, succeeded_intent
from tests.support.processes import Processes
from tests.support.shop import ADDRESS_DATA, PASSWORD

SURROGATE = "\ud800"  # json.dumps sends it as the escape "\ud800", valid JSON syntax
DEEP = b"[" * 1500 + b"]" * 1500  # beyond orjson's 1024 levels and Python's recursion limit
DEEPISH = b"[" * 1000 + b"]" * 1000  # within orjson's limit, beyond the stdlib json's
HUGE = b"9" * 5000  # beyond Python's 4,300-digit int parsing limit


def test_hostile_json_is_refused_with_a_4xx_problem_and_nothing_is_written(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    api, _, _ = start_api(processes, settings)
    api.add_product("MUG-1", amount=1250, stock=100)
    customer = api.register("hostile@example.com").headers
    placed = api.place(customer, {"MUG-1": 1}).body["order_id"]  # stays pending: no worker
    order: dict[str, Any] = {
        "lines": [{"sku": "MUG-1", "quantity": 1}],
        "shipping_address": ADDRESS_DATA,
        "payment": {"token": "pm_card_visa"},
    }
    product = {"sku": "CUP-1", "name": "Cup", "price": {"amount": 100, "currency": "EUR"}}
    _, secret = settings.require_stripe()

    def notification(event_id: str = "evt_1", **extra: Any) -> bytes:
        intent = succeeded_intent("pi_hostile", placed, 1250 + 499)
        body = {"id": event_id, "type": "payment_intent.succeeded", "data": {"object": intent}}
        return json.dumps({**body, "created": int(time.time()), **extra}).encode()

    def webhook(body: bytes, *, signed: bool = True) -> Reply:
        if signed:
            return call("POST", api.base_url + WEBHOOK_PATH, body, signed_headers(secret, body))
        return call("POST", api.base_url + WEBHOOK_PATH, body, {"Content-Type": "application/json"})

    def raw(path: str, body: bytes, headers: dict[str, str] | None = None) -> Reply:
        return call(
            "POST",
            api.base_url + path,
            body,
            {"Content-Type": "application/json", **(headers or {})},
        )

    def address(field: str) -> dict[str, Any]:
        return {**order, "shipping_address": {**ADDRESS_DATA, field: f"A{SURROGATE}"}}

    before = _row_counts(application)
    tries = {
        "register: name": api(
            "POST",
            "/api/customers",
            {"email": "s@example.com", "name": SURROGATE, "password": PASSWORD},
        ),
        **{
            f"place order: address {field}": api("POST", "/api/orders", address(field), customer)
            for field in ADDRESS_DATA
        },
        "place order: sku": api(
            "POST",
            "/api/orders",
            {**order, "lines": [{"sku": f"MUG{SURROGATE}", "quantity": 1}]},
            customer,
        ),
        "place order: payment token": api(
            "POST", "/api/orders", {**order, "payment": {"token": f"tok{SURROGATE}"}}, customer
        ),
        "cancel: reason": api(
            "POST", f"/api/orders/{placed}/cancel", {"reason": f"x{SURROGATE}"}, customer
        ),
        "ship: tracking number": api(
            "POST", f"/admin/api/orders/{placed}/ship", {"tracking_number": SURROGATE}, api.admin
        ),
        "ship lines: shipment id": api(
            "POST",
            f"/admin/api/orders/{placed}/shipments",
            {"lines": order["lines"], "tracking_number": "T1", "shipment_id": SURROGATE},
            api.admin,
        ),
        "return: reason": api(
            "POST",
            f"/api/orders/{placed}/returns",
            {"lines": order["lines"], "reason": f"x{SURROGATE}"},
            customer,
        ),
        "refund: reason": api(
            "POST", f"/admin/api/orders/{placed}/refund", {"reason": SURROGATE}, api.admin
        ),
        "add product: name": api(
            "POST",
            "/admin/api/products",
            {**product, "name": f"Cup{SURROGATE}", "stock": 1},
            api.admin,
        ),
        "webhook: event id": webhook(notification(f"evt_{SURROGATE}")),
        "webhook: unknown field": webhook(notification(note=SURROGATE)),
        "register: 1,500 levels deep, no token": raw("/api/customers", DEEP),
        "register: 1,000 levels deep, no token": raw("/api/customers", DEEPISH),
        "register: a name 1,500 levels deep": raw(
            "/api/customers", b'{"email": "d@example.com", "name": ' + DEEP + b"}"
        ),
        "webhook: 1,500 levels deep": webhook(notification()[:-1] + b', "x": ' + DEEP + b"}"),
        "webhook: 1,000 levels deep": webhook(notification()[:-1] + b', "x": ' + DEEPISH + b"}"),
        "place order: 5,000-digit quantity": raw(
            "/api/orders",
            json.dumps(order).encode().replace(b'"quantity": 1', b'"quantity": ' + HUGE),
            customer,
        ),
        "restock: 5,000-digit quantity": raw(
            "/admin/api/products/MUG-1/restock", b'{"quantity": ' + HUGE + b"}", api.admin
        ),
        "webhook: 5,000-digit created": webhook(
            notification().replace(b'"created": ', b'"created": ' + HUGE)
        ),
    }
    # Unsigned, the webhook refuses it for its signature: checked before the body is parsed.
    unsigned = webhook(notification(f"evt_{SURROGATE}"), signed=False)

    answers = {name: reply.status for name, reply in tries.items()}
    figures.update(answers=answers, unsigned_webhook=unsigned.status)
    assert all(400 <= status < 500 for status in answers.values()), answers
    for name, reply in tries.items():
        assert reply.content_type == "application/problem+json", (name, reply.content_type)
        assert reply.body.get("detail"), (name, reply.body)
    assert unsigned.status == 400, unsigned.body
    assert "signature" in unsigned.body["detail"], unsigned.body
    assert _row_counts(application) == before
    # Strict is not narrow: a surrogate *pair* (U+1F600, escaped) is ordinary text.
    assert api.register("pair@example.com", "Zo\u00eb \U0001f600").customer_id


def test_query_strings_paths_and_headers_cannot_smuggle_a_lone_surrogate(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    """The UTF-8 encoding of U+D800 (ED A0 80), percent-escaped and as raw bytes, over a
    raw socket. werkzeug decodes an escaped path with replacement characters and keeps
    invalid escapes in a query string as they are (`%ED%A0%80`); gunicorn answers raw
    non-ASCII bytes in the request line with its own 400 (werkzeug alone would fail to
    decode such a query string); header values arrive as Latin-1 characters."""
    api, _, _ = start_api(processes, settings)
    api.add_product("MUG-1", amount=1250, stock=100)
    customer = api.register("smuggler@example.com")
    token = customer.headers["Authorization"].encode()
    admin = api.admin["Authorization"].encode()
    placed = api.place(customer.headers, {"MUG-1": 1}).body["order_id"].encode()
    address = (urlsplit(api.base_url).hostname or "", urlsplit(api.base_url).port or 80)
    encoded, escaped = b"\xed\xa0\x80", b"%ED%A0%80"
    order = json.dumps(
        {
            "lines": [{"sku": "MUG-1", "quantity": 1}],
            "shipping_address": ADDRESS_DATA,
            "payment": {"token": "pm_card_visa"},
        }
    ).encode()

    events = event_count(application)
    reads: dict[str, int] = {}
    for label, bad in (("escaped", escaped), ("raw", encoded)):
        reads |= {
            f"query, {label}": _raw_status(
                address, b"GET", b"/api/orders/%s?consistency_token=%s" % (placed, bad), token
            ),
            f"query of a list, {label}": _raw_status(
                address, b"GET", b"/admin/api/orders?customer_id=%s" % bad, admin
            ),
            f"path, {label}": _raw_status(
                address, b"POST", b"/admin/api/products/%s/restock" % bad, admin, b'{"quantity": 1}'
            ),
            f"header X-Consistency-Token, {label}": _raw_status(
                address,
                b"GET",
                b"/api/orders/" + placed,
                token,
                headers={b"X-Consistency-Token": bad},
            ),
        }
    figures.update(reads=reads)
    assert all(status < 500 for status in reads.values()), reads
    assert event_count(application) == events  # (a refused restock keeps its refusal)
    # Header values reach storage as Latin-1 characters (an X-Correlation-ID only when it
    # is sane, an Idempotency-Key as it is): ordinary text, so the write goes through.
    writes = {
        "register, header X-Correlation-ID": _raw_status(
            address,
            b"POST",
            b"/api/customers",
            b"",
            b'{"email": "c@example.com", "name": "C", "password": "%s"}' % PASSWORD.encode(),
            headers={b"X-Correlation-ID": encoded},
        ),
        **{
            f"place order, header Idempotency-Key, {label} ({n})": _raw_status(
                address, b"POST", b"/api/orders", token, order, headers={b"Idempotency-Key": key}
            )
            for n, (label, key) in enumerate(
                (("raw", encoded), ("escaped", escaped), ("raw", encoded))
            )
        },
    }
    figures.update(writes=writes)
    assert sorted(writes.values()) == [201, 202, 202, 202], writes


def _raw_status(
    address: tuple[str, int],
    method: bytes,
    target: bytes,
    authorization: bytes,
    body: bytes = b"",
    *,
    headers: dict[bytes, bytes] | None = None,
) -> int:
    """The status of one HTTP/1.1 request written byte for byte (http.client would refuse
    or encode the bytes under test)."""
    lines = [
        method + b" " + target + b" HTTP/1.1",
        b"Host: %s:%d" % (address[0].encode(), address[1]),
    ]
    lines += [b"Connection: close"] + (
        [b"Authorization: " + authorization] if authorization else []
    )
    if body:
        lines += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
    lines += [name + b": " + value for name, value in (headers or {}).items()]
    with socket.create_connection(address, timeout=15) as connection:
        connection.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    return int(reply.split(b" ", 2)[1])


def _row_counts(application: Application) -> dict[str, int]:
    """Every table's row count: what a refused request must leave as it was."""
    with application.engine.connect() as conn:
        tables = (
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            )
            .scalars()
            .all()
        )
        return {
            table: int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in tables
        }
