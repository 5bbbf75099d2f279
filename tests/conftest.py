"""Each test session gets its own PostgreSQL database, its own Redis database and its own
local Stripe (localstripe, see localdev.stripe_server).

With DATABASE_URL / REDIS_URL set, they are created on those servers; without,
on the private servers under ./var (the same ones `make run` uses).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy.engine import make_url

import localdev
from config.bootstrap import Application, bootstrap
from config.database import migrate
from config.flask_app import create_app
from config.settings import Settings
from localdev.servers import start_stripe
from tests.support.api_client import Customer
from tests.support.shop import PASSWORD

ROOT = Path(__file__).resolve().parent.parent
REDIS_DATABASES = range(1, 16)  # db 0 holds the claims
STRIPE_API_KEY = "sk_test_shop_tests"
STRIPE_WEBHOOK_SECRET = "whsec_shop_tests"


@pytest.fixture(scope="session")
def server_settings() -> Iterator[Settings]:
    settings = Settings.from_env()
    if settings.database_url and settings.redis_url:
        yield settings
        return
    provisioned = localdev.provision(replace(settings, var_dir=ROOT / "var"))
    yield provisioned.settings
    provisioned.release()


@pytest.fixture(scope="session")
def database_url(server_settings: Settings) -> Iterator[str]:
    server_url = make_url(server_settings.require()[0])
    name = f"shop_test_{uuid.uuid4().hex[:12]}"
    admin = _libpq(server_url.render_as_string(hide_password=False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server_url.set(database=name).render_as_string(hide_password=False)
    migrate(url)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url(server_settings: Settings) -> Iterator[str]:
    base = server_settings.require()[1]
    claims = Redis.from_url(base, db=0)
    for db in REDIS_DATABASES:
        key = f"shop-test:claim:{db}"
        if claims.set(key, os.getpid(), nx=True, ex=3 * 3600):
            break
    else:
        raise RuntimeError("every Redis test database is claimed by another test run")
    url = _redis_url_with_db(base, db)
    Redis.from_url(url).flushdb()
    yield url
    Redis.from_url(url).flushdb()
    claims.delete(key)
    claims.close()


@pytest.fixture(scope="session")
def stripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's own local Stripe API."""
    server = start_stripe(tmp_path_factory.mktemp("stripe"))
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def settings(
    database_url: str, redis_url: str, stripe_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        admin_token="test-admin-token",
        secret_key="test-secret-key",
        stripe_api_key=STRIPE_API_KEY,
        stripe_api_base=stripe_url,
        stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
        var_dir=tmp_path_factory.mktemp("var"),
    )
    return settings.without_abuse_limits()  # the tests of the limits set their own


@pytest.fixture(scope="session")
def application(settings: Settings) -> Iterator[Application]:
    built = bootstrap(settings)
    yield built
    built.close()


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _redis_url_with_db(url: str, db: int) -> str:
    base = url.split("?", 1)[0]
    if base.startswith("unix://"):
        return f"{base}?db={db}"
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/{db}"


@pytest.fixture(scope="session")
def app(application: Application) -> Flask:
    app = create_app(application)
    app.testing = True
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def admin_headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.admin_token}"}


@pytest.fixture
def register_customer(client: FlaskClient) -> Callable[..., Customer]:
    """Register a customer through the API (with PASSWORD); returns its id and auth headers."""

    def register(email: str = "ada@example.com", name: str = "Ada Lovelace") -> Customer:
        body = {"email": email, "name": name, "password": PASSWORD}
        response = client.post("/api/customers", json=body)
        assert response.status_code == 201, response.get_json()
        answer = response.get_json()
        return Customer(answer["customer_id"], {"Authorization": f"Bearer {answer['token']}"})

    return register
