"""The dashboard tests' fixtures (the workers' jobs, the catalog, a signed-in browser,
customers), and named admins made the way an operator makes them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from config import cli
from config.bootstrap import Application
from tests.integration.admins.support import Admin
from tests.integration.dashboard.conftest import ada, admin, catalog, workers_jobs

__all__ = ["ada", "admin", "catalog", "workers_jobs"]


@pytest.fixture
def shop_cli(application: Application, monkeypatch: pytest.MonkeyPatch) -> None:
    """`shop ...` commands run against the test's application."""

    @contextmanager
    def this_application(command: str) -> Iterator[Application]:
        yield application

    monkeypatch.setattr(cli, "_application", this_application)


@pytest.fixture
def make_admin(application: Application) -> Callable[[str, str], Admin]:
    def make(login: str, role: str) -> Admin:
        account, token = application.admins.create(login, role, "cli:test")
        return Admin(account.admin_id, login, role, token)

    return make


@pytest.fixture
def operator(make_admin: Callable[[str, str], Admin]) -> Admin:
    return make_admin("olga", "operator")


@pytest.fixture
def viewer(make_admin: Callable[[str, str], Admin]) -> Admin:
    return make_admin("vic", "viewer")
