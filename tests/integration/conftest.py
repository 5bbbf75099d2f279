from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from config.bootstrap import Application
from config.settings import Settings
from tests.support.state import reset_state


@pytest.fixture(autouse=True)
def clean_state(application: Application) -> Iterator[None]:
    """Every integration test starts from an empty log, empty read models and empty Redis."""
    reset_state(application)
    yield


@pytest.fixture
def database(server_settings: Settings) -> Iterator[str]:
    """An empty database of its own on the test server (for the tests of migrations),
    dropped afterwards."""
    server = make_url(server_settings.require()[0])
    name = f"shop_test_{uuid.uuid4().hex[:12]}"
    admin = server.render_as_string(hide_password=False).replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
