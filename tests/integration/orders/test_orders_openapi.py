from __future__ import annotations

import pytest
from flask.testing import FlaskClient

ENDPOINTS = {
    "/api/customers": {"201", "409", "422"},
    "/api/orders": {"202", "401", "403", "404", "409", "422"},
    "/api/orders/{order_id}/cancel": {"202", "401", "403", "404", "409", "422"},
    "/admin/api/orders/{order_id}/ship": {"202", "401", "403", "404", "409", "422"},
}


@pytest.mark.parametrize(("path", "statuses"), ENDPOINTS.items())
def test_every_orders_endpoint_documents_its_responses(
    client: FlaskClient, path: str, statuses: set[str]
) -> None:
    operation = client.get("/openapi.json").get_json()["paths"][path]["post"]

    assert statuses <= set(operation["responses"])
    if "401" in statuses:
        assert operation["security"] == [{"bearer": []}]
    else:
        assert "security" not in operation
