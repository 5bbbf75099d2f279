"""Every shop_* metric the shipped alert rules (monitoring/alerts.yml) use is one the
application exports: a renamed or dropped metric would leave its alert silent for good
(an expression over a name nobody exports is simply empty). The names come from a real
scrape of `/metrics`, which reads the real PostgreSQL and Redis."""

from __future__ import annotations

import re
from typing import Any

import yaml
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.promtool import ROOT

RULES = ROOT / "monitoring" / "alerts.yml"
SHOP_METRIC = re.compile(r"\bshop_[a-z0-9_]+")


def names_in_rules() -> set[str]:
    rules: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return {
        name
        for group in rules["groups"]
        for rule in group["rules"]
        for name in SHOP_METRIC.findall(rule["expr"])
    }


def exported(client: FlaskClient) -> set[str]:
    """Family and sample names (a counter's family has no _total) of one scrape."""
    response = client.get("/metrics")
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.name == "shop_metrics_collect_errors":
            failed = [s.labels["source"] for s in family.samples if s.value]
            assert not failed, f"/metrics could not read {failed}: the scrape is incomplete"
    return names


def test_every_metric_the_alerts_use_is_exported(client: FlaskClient) -> None:
    used = names_in_rules()
    assert len(used) > 10, used  # the pattern found the rules' names

    missing = used - exported(client)

    assert missing == set(), f"alerts.yml uses metrics /metrics does not export: {missing}"
