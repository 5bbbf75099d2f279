from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient

from config import jobs
from config.bootstrap import Application
from config.jobs import Jobs
from config.settings import Settings
from tests.integration.dashboard.support import sign_in
from tests.support.api_client import Customer
from tests.support.shop import CATALOG, Shop


@pytest.fixture(autouse=True)
def workers_jobs(application: Application, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`config.jobs` (what the RQ workers run) serves the test's application."""
    monkeypatch.setattr(jobs, "_served", Jobs(application))
    yield


@pytest.fixture
def catalog(application: Application) -> None:
    Shop(application.bus).add_products(CATALOG)


@pytest.fixture
def admin(client: FlaskClient, settings: Settings) -> FlaskClient:
    """A browser session signed in to the dashboard."""
    response = sign_in(client, settings.admin_token or "")
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


@pytest.fixture
def ada(register_customer: Callable[..., Customer]) -> Customer:
    return register_customer("ada@example.com", "Ada Lovelace")


@pytest.fixture
def grace(register_customer: Callable[..., Customer]) -> Customer:
    return register_customer("grace@example.com", "Grace Hopper")
