"""Fixtures of the fault suite: a clean log and Redis per test, the processes a test
starts (always stopped afterwards), and the figures each scenario reports."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.bootstrap import Application
from tests.faults.support import STOP_GRACE
from tests.support.processes import Processes
from tests.support.state import reset_state

FIGURES: dict[str, dict[str, Any]] = {}


@pytest.fixture(autouse=True)
def clean_state(application: Application) -> Iterator[None]:
    """Every scenario starts from an empty log, empty read models and an empty Redis db."""
    reset_state(application)
    yield


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    logs = tmp_path / "logs"
    logs.mkdir()
    with Processes(logs, grace=STOP_GRACE) as started:
        yield started


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Numbers a scenario measured; printed at the end of the run (and written to the
    file named by FAULT_FIGURES, if set) for docs/RELIABILITY.md."""
    found: dict[str, Any] = {}
    FIGURES[request.node.name] = found
    return found


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault scenario figures")
    for name, found in FIGURES.items():
        terminalreporter.write_line(f"{name}: {json.dumps(found, sort_keys=True, default=str)}")
    target = os.environ.get("FAULT_FIGURES")
    if target:
        Path(target).write_text(json.dumps(FIGURES, indent=2, sort_keys=True, default=str))
