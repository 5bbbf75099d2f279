from __future__ import annotations

from collections.abc import Iterator

import pytest

import config.jobs
from config.bootstrap import Container


@pytest.fixture
def jobs(container: Container, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The RQ job functions (`config.jobs`) run in this process, on the test's container."""
    monkeypatch.setattr(config.jobs, "_container", container)
    yield
