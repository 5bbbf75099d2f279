from __future__ import annotations

from collections.abc import Iterator

import pytest

import config.jobs
from config.bootstrap import Application
from config.jobs import Jobs


@pytest.fixture
def jobs(application: Application, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The RQ job functions (`config.jobs`) run in this process, on the test's application,
    as a worker serves its own."""
    monkeypatch.setattr(config.jobs, "_served", Jobs(application))
    yield
