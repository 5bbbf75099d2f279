"""`GET /metrics`: Prometheus text with command and event counters, subscription
checkpoints and lag, queue depth and saga counts."""

from __future__ import annotations

import time

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from config.bootstrap import Application
from dashboard.lag import LagSamples
from tests.integration.dashboard.support import place, settle
from tests.support.api_client import Customer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: FlaskClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    found: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples.get((metric, frozenset(labels.items())), 0.0)


def total(samples: Samples, metric: str, /, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == metric and wanted <= found)


def partitions_of(samples: Samples, subscription: str) -> set[str]:
    """The partitions `shop_subscription_partition_*` gauges show for the subscription."""
    return {
        dict(labels)["partition"]
        for (name, labels), _ in samples.items()
        if name == "shop_subscription_partition_lag_events"
        and ("subscription", subscription) in labels
    }


def test_metrics_count_commands_and_events_and_show_the_lag_of_each_subscription(
    client: FlaskClient, application: Application, catalog: None, ada: Customer
) -> None:
    before = scrape(client)
    place(client, ada, {"MUG-1": 1})
    refused = client.post(
        "/admin/api/products/MUG-1/price",
        json={"amount": 100, "currency": "GBP"},
        headers={"Authorization": f"Bearer {application.settings.admin_token}"},
    )
    assert refused.status_code == 409

    behind = scrape(client)

    def grew(metric: str, /, **labels: str) -> float:
        return total(behind, metric, **labels) - total(before, metric, **labels)

    assert grew("shop_commands_handled_total", command="PlaceOrder") == 1
    assert grew("shop_commands_handled_total", command="ChangePrice") == 1
    assert grew("shop_commands_failed_total", command="ChangePrice", code="currency_mismatch") == 1
    assert grew("shop_command_duration_seconds_count", command="PlaceOrder") == 1
    assert grew("shop_events_appended_total", event="OrderPlaced", stream_type="order") == 1
    assert grew("shop_http_requests_total", route="/api/orders", status="202") == 1
    lag = value(
        behind, "shop_subscription_lag_events",
        name="order_list", subscription="order_list@1", role="active",
    )  # fmt: skip
    assert lag >= 1
    assert (
        total(behind, "shop_subscription_partition_lag_events", subscription="order_list@1") == lag
    )
    assert value(behind, "shop_subscription_lag_events", name="order_fulfillment",
                 subscription="order_fulfillment", role="saga") >= 1  # fmt: skip
    head = value(behind, "shop_event_log_head_position")
    assert head > 0
    assert value(behind, "shop_rq_queue_jobs", queue="shop-sagas") >= 1  # the waker's job
    assert value(behind, "shop_metrics_collect_errors", source="subscriptions") == 0

    settle(application)
    after = scrape(client)

    head = value(after, "shop_event_log_head_position")
    partitions = [str(p) for p in range(application.settings.subscription_partitions)]
    for name in ("order_list@1", "order_detail@1", "sales_analytics@1", "catalog@1"):
        labels = {"name": name.split("@")[0], "subscription": name, "role": "active"}
        assert value(after, "shop_subscription_lag_events", **labels) == 0, name
        assert partitions_of(after, name) == set(partitions), name
        # Each partition has its own checkpoint (the subscription's is the least of them):
        # the one holding the newest event is at the head.
        checkpoints = [
            value(after, "shop_subscription_partition_checkpoint_position",
                  subscription=name, partition=p)
            for p in partitions
        ]  # fmt: skip
        assert max(checkpoints) == head, name
        assert value(after, "shop_subscription_checkpoint_position", **labels) == min(checkpoints)
        for p in partitions:
            part = {"subscription": name, "partition": p}
            assert value(after, "shop_subscription_partition_lag_events", **part) == 0
            assert value(after, "shop_subscription_partition_held", **part) == 0  # let go
    assert value(after, "shop_sagas", state="completed") == 1
    assert total(after, "shop_events_appended_total", event="OrderConfirmed") >= 1
    assert value(after, "shop_read_model_generation", name="order_list") == 1


def test_the_projections_page_draws_the_recent_lag_as_a_sparkline(
    admin: FlaskClient, application: Application
) -> None:
    samples = LagSamples(application.redis, every=0.001)
    for lag in (4, 9, 2):
        samples.record({"order_list@1": (lag, 0.5)})
        time.sleep(0.005)

    html = admin.get("/admin/projections").get_data(as_text=True)

    row = html.split('data-subscription="order_list"')[1].split("</tr>")[0]
    assert '<svg class="spark"' in row
    assert "peak 9 events over the last 4 readings" in row


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
def test_metrics_need_no_credential(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 200
