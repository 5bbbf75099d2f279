"""The shop's API over real HTTP, as its clients use it, for the suites that run the real
server: one request at a time, and the customer and admin calls those suites share."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.support.shop import ADDRESS_DATA, PASSWORD


@dataclass(frozen=True)
class Customer:
    """A registered customer: its id and the headers that authenticate it."""

    customer_id: str
    headers: dict[str, str]


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]
    seconds: float
    content_type: str = ""


def call(
    method: str,
    url: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    timeout: float = 15,
) -> Reply:
    """One HTTP request; an HTTP error is a reply too (connection failures raise).
    A `bytes` body is sent as it is, anything else as JSON; a reply's body is parsed as
    JSON, or else kept as text."""
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status, found = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, found = error.read(), error.code, dict(error.headers)
        error.close()
    seconds = time.monotonic() - started
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Reply(status, parsed, found, seconds, found.get("Content-Type", ""))


class ApiClient:
    """The API at `base_url`: any request, and registering, stocking and ordering."""

    def __init__(self, base_url: str, admin_token: str) -> None:
        self.base_url = base_url
        self.admin = {"Authorization": f"Bearer {admin_token}"}

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 15,
    ) -> Reply:
        return call(method, self.base_url + path, body, headers, timeout=timeout)

    def register(self, email: str, name: str = "A Customer") -> Customer:
        reply = self("POST", "/api/customers", {"email": email, "name": name, "password": PASSWORD})
        assert reply.status == 201, (reply.status, reply.body)
        return Customer(
            reply.body["customer_id"], {"Authorization": f"Bearer {reply.body['token']}"}
        )

    def add_product(
        self,
        sku: str,
        *,
        stock: int,
        amount: int = 1250,
        currency: str = "EUR",
        name: str | None = None,
    ) -> None:
        """Add a product as the admin (named "Product <sku>" unless `name` is given)."""
        body = {
            "sku": sku,
            "name": name if name is not None else f"Product {sku}",
            "price": {"amount": amount, "currency": currency},
            "stock": stock,
        }
        reply = self("POST", "/admin/api/products", body, self.admin)
        assert reply.status == 202, (reply.status, reply.body)

    def place(
        self,
        headers: Mapping[str, str],
        lines: Mapping[str, int],
        token: str = "pm_card_visa",
        *,
        key: str | None = None,
        correlation_id: str | None = None,
        timeout: float = 15,
    ) -> Reply:
        """Place an order as the customer `headers` authenticate, shipped to ADDRESS_DATA,
        with an Idempotency-Key and an X-Correlation-ID if given; the reply as it is."""
        body = {
            "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines.items()],
            "shipping_address": ADDRESS_DATA,
            "payment": {"token": token},
        }
        sent = dict(headers)
        if key is not None:
            sent["Idempotency-Key"] = key
        if correlation_id:
            sent["X-Correlation-ID"] = correlation_id
        return self("POST", "/api/orders", body, sent, timeout=timeout)
