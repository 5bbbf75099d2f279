from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.bootstrap import Application
from tests.support.state import reset_state


@pytest.fixture(autouse=True)
def clean_state(application: Application) -> Iterator[None]:
    """Every integration test starts from an empty log, empty read models and empty Redis."""
    reset_state(application)
    yield
