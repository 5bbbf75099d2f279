from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg.errors import DeadlockDetected
from sqlalchemy.exc import OperationalError

from config.bootstrap import Application
from tests.e2e.fulfillment_support import Storefront, System
from tests.support.state import reset_state

RESET_ATTEMPTS = 5


@pytest.fixture(autouse=True)
def clean_state(application: Application) -> Iterator[None]:
    """Every integration test starts from an empty log, empty read models and empty Redis.

    The module's processes keep running meanwhile (sweeps, reconciliation, late webhooks),
    so the TRUNCATE, taking its locks table by table, may deadlock with one of their
    transactions; PostgreSQL then aborts one of the two, and the TRUNCATE is tried again.
    """
    for attempt in range(1, RESET_ATTEMPTS + 1):
        try:
            reset_state(application)
            break
        except OperationalError as error:
            if not isinstance(error.orig, DeadlockDetected) or attempt == RESET_ATTEMPTS:
                raise
    yield


@pytest.fixture
def shop(system: System) -> Iterator[Storefront]:
    """The storefront of the module's running `system` (each fulfillment module starts its
    own, with its own workers and payment deadline); every process must outlive the test."""
    yield Storefront(system)
    system.assert_alive()
