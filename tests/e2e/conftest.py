from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.bootstrap import Application
from tests.e2e.fulfillment_support import Storefront, System
from tests.support.state import reset_state


@pytest.fixture(autouse=True)
def clean_state(application: Application) -> Iterator[None]:
    """Every integration test starts from an empty log, empty read models and empty Redis."""
    reset_state(application)
    yield


@pytest.fixture
def shop(system: System) -> Iterator[Storefront]:
    """The storefront of the module's running `system` (each fulfillment module starts its
    own, with its own workers and payment deadline); every process must outlive the test."""
    yield Storefront(system)
    system.assert_alive()
