"""Request bodies and response checks shared by the orders API tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.test import TestResponse

from tests.support.shop import ADDRESS_DATA

Placer = Callable[..., TestResponse]


def order_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "lines": [{"sku": "MUG-1", "quantity": 2}, {"sku": "TEE-1", "quantity": 1}],
        "shipping_address": dict(ADDRESS_DATA),
        "payment": {"token": "pm_card_visa"},
    }
    return body | overrides


def problem(response: TestResponse, status: int) -> dict[str, Any]:
    """The problem+json body of a response that must have failed with `status`."""
    assert response.status_code == status, response.get_json()
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status
    return body
