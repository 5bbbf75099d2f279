"""Scenario 7: schemathesis fuzzes every operation of the live /openapi.json served by
gunicorn, with valid and with invalid data. No answer is a 5xx, and every answer is
documented: its status, content type, headers and body schema."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.bootstrap import Application
from config.settings import Settings
from tests.faults.support import start_api
from tests.support.api_client import call
from tests.support.payments import (
    SIGNATURE_HEADER,
    WEBHOOK_PATH,
    signed_headers,
    stripe_signature,
    succeeded_intent,
)
from tests.support.processes import Processes, wait_for_workers
from tests.support.shop import PASSWORD

EXAMPLES = 12  # per operation and generation mode: ~450 cases in all
ENDS_SESSIONS = ("/api/sessions/current", "/api/me/password")  # sign out, or others out
FORGETS = "/api/me"  # DELETE: the customer is forgotten, their account closed
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_fuzzed_requests_get_documented_answers_and_never_a_server_error(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    api, _, env = start_api(processes, settings, SWEEP_INTERVAL="1", PAYMENT_TIMEOUT="5")
    worker = processes.worker(env)
    wait_for_workers(settings.require()[1], [worker])
    api.add_product("MUG-1", amount=1250, stock=100_000)
    customer = api.register("fuzz@example.com").headers
    api.place(customer, {"MUG-1": 1})
    _, secret = settings.require_stripe()
    schema = schemathesis.openapi.from_url(api.base_url + "/openapi.json")
    session = requests.Session()
    cases: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: dict[str, str] = {}  # operation [mode] -> the first report
    kinds: dict[str, set[str]] = {}  # failure kind -> operations [mode]

    def auth(path: str, secured: bool) -> dict[str, str]:
        if not secured:
            return {}
        if path in ENDS_SESSIONS:  # a session of its own: the customer's goes on for the rest
            return _new_session(api.base_url, "fuzz@example.com")
        if path == FORGETS:  # a customer of its own to forget
            return _new_customer(api.base_url)
        return dict(api.admin if path.startswith("/admin/") else customer)

    def send(case: schemathesis.Case[Any], secured: bool) -> Any:
        headers = auth(case.path, secured)
        if case.path != WEBHOOK_PATH:
            return case.call(base_url=api.base_url, session=session, headers=headers, timeout=15)
        # The provider signs the raw body: sign exactly the bytes that are sent.
        kwargs = case.as_transport_kwargs(base_url=api.base_url, headers=headers)
        if "json" in kwargs:
            kwargs["data"] = json.dumps(kwargs.pop("json")).encode()
            kwargs["headers"]["Content-Type"] = "application/json"
        data = kwargs.get("data") or b""
        raw = data if isinstance(data, bytes) else str(data).encode()
        kwargs["data"] = raw
        kwargs["headers"][SIGNATURE_HEADER] = stripe_signature(secret, raw)
        kwargs.pop("timeout", None)
        return session.request(**kwargs, timeout=15)

    def run(operation: Any, mode: GenerationMode, label: str, secured: bool) -> None:
        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: schemathesis.Case[Any]) -> None:
            response = send(case, secured)
            cases[label] += 1
            statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as group:
                failures.setdefault(label, str(group)[:1500])
                for failure in group.exceptions:
                    kinds.setdefault(f"{failure.code} {failure.title}", set()).add(label)

        fuzz()

    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    for operation in operations:
        secured = bool(operation.definition.raw.get("security"))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run(operation, mode, f"{operation.label} [{mode.value}]", secured)
    seconds = time.monotonic() - started

    total = sum(cases.values())
    figures.update(
        operations=len(operations),
        cases=total,
        statuses=dict(sorted(statuses.items())),
        failures={kind: len(labels) for kind, labels in sorted(kinds.items())},
        seconds=round(seconds, 1),
        schemathesis=schemathesis.__version__,
    )
    assert total >= 300
    summary = "\n".join(f"{kind}: {sorted(labels)}" for kind, labels in sorted(kinds.items()))
    reports = "\n\n".join(f"== {label}\n{text}" for label, text in failures.items())
    assert not failures, f"{summary}\n\n{reports}"
    assert worker.alive


NUL = "\u0000"


def _new_session(base_url: str, email: str) -> dict[str, str]:
    """The headers of a new session of the customer registered with `email`."""
    reply = call("POST", base_url + "/api/sessions", {"email": email, "password": PASSWORD})
    assert reply.status == 201, (reply.status, reply.body)
    return {"Authorization": f"Bearer {reply.body['access_token']}"}


def _new_customer(base_url: str) -> dict[str, str]:
    """The headers of a customer registered for the occasion."""
    body = {"email": f"{uuid.uuid4().hex}@example.com", "name": "Throwaway", "password": PASSWORD}
    reply = call("POST", base_url + "/api/customers", body)
    assert reply.status == 201, (reply.status, reply.body)
    return {"Authorization": f"Bearer {reply.body['access_token']}"}


def test_text_with_a_nul_character_is_refused_with_a_4xx_not_a_server_error(
    settings: Settings, application: Application, processes: Processes, figures: dict[str, Any]
) -> None:
    """A fuzzing finding kept as a fixed case: PostgreSQL cannot store U+0000 in text or
    jsonb, so a NUL in any free-text field must be refused as invalid input."""
    api, _, _ = start_api(processes, settings)
    api.add_product("MUG-1", amount=1250, stock=100)
    customer = api.register("nul@example.com").headers
    order: dict[str, Any] = {
        "lines": [{"sku": "MUG-1", "quantity": 1}],
        "shipping_address": {
            "name": "Ada",
            "line1": "1 St",
            "city": "London",
            "postal_code": "N1",
            "country": "GB",
        },
        "payment": {"token": "pm_card_visa"},
    }
    placed = api.place(customer, {"MUG-1": 1}).body["order_id"]
    body = json.dumps(
        {
            "id": f"evt_{NUL}",
            "type": "payment_intent.succeeded",
            "data": {"object": succeeded_intent("pi_nul", placed, 1250 + 499)},
            "created": int(time.time()),
        }
    ).encode()
    signed = signed_headers(settings.require_stripe()[1], body)
    one_mug = {"lines": [{"sku": "MUG-1", "quantity": 1}], "reason": "broken"}
    tries = {
        "register: name": api(
            "POST",
            "/api/customers",
            {"email": "n@example.com", "name": NUL, "password": PASSWORD},
        ),
        "place order: address": api(
            "POST",
            "/api/orders",
            {**order, "shipping_address": {**order["shipping_address"], "name": f"A{NUL}"}},
            customer,
        ),
        "place order: sku": api(
            "POST",
            "/api/orders",
            {**order, "lines": [{"sku": f"MUG{NUL}", "quantity": 1}]},
            customer,
        ),
        "place order: payment token": api(
            "POST", "/api/orders", {**order, "payment": {"token": f"tok{NUL}"}}, customer
        ),
        "cancel: reason": api(
            "POST", f"/api/orders/{placed}/cancel", {"reason": f"x{NUL}"}, customer
        ),
        "webhook: event id": call("POST", api.base_url + WEBHOOK_PATH, body, signed),
        "return: reason": api(
            "POST", f"/api/orders/{placed}/returns", {**one_mug, "reason": f"x{NUL}"}, customer
        ),
        "shipment: id": api(
            "POST",
            f"/admin/api/orders/{placed}/shipments",
            {"lines": one_mug["lines"], "tracking_number": "T1", "shipment_id": f"s{NUL}"},
            api.admin,
        ),
        "inspection: note": api(
            "POST",
            f"/admin/api/orders/{placed}/returns/{uuid.uuid4()}/inspect",
            {"accepted": [], "note": f"n{NUL}"},
            api.admin,
        ),
    }
    answers = {name: reply.status for name, reply in tries.items()}
    figures.update(answers=answers)
    assert all(400 <= status < 500 for status in answers.values()), answers
