"""A shop whose queries read from a real streaming replica (see tests.support.replication):
a private primary and its replica, started once for the tests of this directory."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import psycopg
import pytest
from flask import Flask

from config.bootstrap import Application, bootstrap
from config.database import migrate
from config.flask_app import create_app
from config.settings import Settings
from tests.support.replication import Replication, caught_up, start_replication
from tests.support.state import reset_state

DATABASE = "shop"
BOUND = 0.5  # READ_WAIT_TIMEOUT of the replica shop: a paused replica fails fast


@pytest.fixture(scope="session")
def replication() -> Iterator[Replication]:
    started = start_replication()
    try:
        with psycopg.connect(started.primary_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        migrate(started.url("primary", DATABASE))
        caught_up(started)
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def replica_settings(settings: Settings, replication: Replication) -> Settings:
    """The test settings, with the private primary as DATABASE_URL and its replica as
    READ_DATABASE_URL."""
    return dataclasses.replace(
        settings,
        database_url=replication.url("primary", DATABASE),
        read_database_urls=(replication.url("replica", DATABASE),),
        read_wait_timeout=BOUND,
    )


@pytest.fixture(scope="session")
def replica_application(replica_settings: Settings) -> Iterator[Application]:
    built = bootstrap(replica_settings)
    yield built
    built.close()


@pytest.fixture(scope="session")
def replica_app(replica_application: Application) -> Flask:
    app = create_app(replica_application)
    app.testing = True
    return app


@pytest.fixture(autouse=True)
def replica_state(replication: Replication, replica_application: Application) -> Iterator[None]:
    """Every test starts with replay running, an empty shop and a replica caught up."""
    resume(replication)
    reset_state(replica_application)
    caught_up(replication)
    yield
    resume(replication)


@pytest.fixture(autouse=True)
def clean_state() -> None:
    """The integration suite's own reset is for its application, unused here."""


def pause(replication: Replication) -> None:
    """Pause the replica's replay, and wait until it has (a pause is only requested)."""
    with psycopg.connect(replication.replica_url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 10
        while True:
            row = conn.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()
            if row is not None and row[0] == "paused":
                return
            assert time.monotonic() < deadline, f"replay still {row}"
            time.sleep(0.01)


def resume(replication: Replication) -> None:
    with psycopg.connect(replication.replica_url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_resume()")
