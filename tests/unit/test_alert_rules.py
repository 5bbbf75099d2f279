"""The Prometheus alerts shipped in monitoring/ are valid, tested and documented.

promtool (Debian's, see tests.support.promtool) checks the rules and the example
configuration and runs the rules' own unit tests, monitoring/alerts_test.yml. The
rest keeps those honest: an alert name in the unit tests that no rule has would pass
`exp_alerts: []` without testing anything, so every tested name must be a rule's and
every rule must be shown both firing and not; and every alert carries what an
operator needs, a severity and a runbook section that exists.
(tests/integration/test_alert_rules_metrics.py checks the metric names.)
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.promtool import ROOT, promtool

MONITORING = ROOT / "monitoring"
RULES = MONITORING / "alerts.yml"
RULE_TESTS = MONITORING / "alerts_test.yml"
CONFIG = MONITORING / "prometheus.yml"
RUNBOOK = ROOT / "docs" / "RUNBOOK.md"
SEVERITIES = {"critical", "warning"}


@pytest.fixture(scope="session")
def promtool_binary() -> Path:
    return promtool()


def run(binary: Path, *args: str) -> str:
    done = subprocess.run(
        [str(binary), *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} exited {done.returncode}:\n{output}"
    return output


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def alerting_rules() -> list[dict[str, Any]]:
    return [rule for group in load(RULES)["groups"] for rule in group["rules"]]


def runbook_anchors() -> set[str]:
    """The anchors GitHub gives the runbook's headings (lower case, punctuation dropped,
    spaces to hyphens)."""
    headings = re.findall(r"^#{1,6} +(.+?) *$", RUNBOOK.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_promtool_accepts_every_rule(promtool_binary: Path) -> None:
    output = run(promtool_binary, "check", "rules", str(RULES))

    assert f"SUCCESS: {len(alerting_rules())} rules found" in output, output


def test_the_example_configuration_loads_the_rules(promtool_binary: Path) -> None:
    output = run(promtool_binary, "check", "config", str(CONFIG))

    assert "SUCCESS: 1 rule files found" in output, output


def test_the_rules_pass_their_promtool_unit_tests(promtool_binary: Path) -> None:
    output = run(promtool_binary, "test", "rules", str(RULE_TESTS))

    assert "SUCCESS" in output, output


def test_every_alert_is_shown_firing_and_not_firing() -> None:
    names = {rule["alert"] for rule in alerting_rules()}
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in load(RULE_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])

    assert (fired | quiet) - names == set(), "tests of alerts no rule defines"
    assert names - fired == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown not firing"


def test_every_alert_waits_has_a_severity_says_what_fired_and_has_a_runbook_section() -> None:
    anchors = runbook_anchors()
    for rule in alerting_rules():
        name, annotations = rule["alert"], rule.get("annotations", {})
        assert rule.get("for"), f"{name} has no for:"
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        assert annotations.get("summary") and annotations.get("description"), name
        assert "$labels." in annotations["summary"] + annotations["description"], name
        anchor = name.lower()
        assert annotations.get("runbook_url") == f"docs/RUNBOOK.md#{anchor}", name
        assert anchor in anchors, f"docs/RUNBOOK.md has no section {name}"
