"""The customer directory: every registered customer's name and email, kept from
CustomerRegistered by the workers like the other read models (lag visible, rebuildable),
or inside RegisterCustomer's own transaction when declared synchronous."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from flask.testing import FlaskClient

from config import jobs
from config.bootstrap import Application, bootstrap
from config.settings import Settings
from projections.queries import CustomerDirectory
from tests.support.api_client import Customer
from tests.support.event_log import whole_log
from tests.support.read_models import contents, drain, rebuilt_from_zero
from tests.support.shop import Shop


def _projection(client: FlaskClient, headers: dict[str, str]) -> dict[str, object]:
    response = client.get("/admin/api/projections", headers=headers)
    assert response.status_code == 200
    (found,) = [p for p in response.get_json()["projections"] if p["name"] == "customer_directory"]
    return dict(found)


def test_registered_customers_are_in_the_directory_once_the_workers_apply_them(
    application: Application,
    client: FlaskClient,
    admin_headers: dict[str, str],
    register_customer: Callable[..., Customer],
) -> None:
    ada = register_customer("Ada@Example.com", "Ada Lovelace")
    grace = register_customer("grace@example.com", "Grace Hopper")
    directory = CustomerDirectory(application.engine)

    status = _projection(client, admin_headers)
    assert (status["store"], status["mode"], status["lag_events"]) == ("postgres", "async", 2)
    assert directory.named(1, [ada.customer_id]) == {}

    drain(application, ["customer_directory"])

    assert _projection(client, admin_headers)["lag_events"] == 0
    assert directory.named(1, [ada.customer_id, grace.customer_id, "nobody"]) == {
        ada.customer_id: {"name": "Ada Lovelace", "email": "ada@example.com"},
        grace.customer_id: {"name": "Grace Hopper", "email": "grace@example.com"},
    }
    assert directory.named(1, []) == {}
    assert directory.with_email(1, "  ADA@example.COM ") == ada.customer_id
    assert directory.with_email(1, "ada@example.org") is None
    (row,) = [
        r
        for r in contents(application, "customer_directory", 1)["customer_directory"]
        if r["customer_id"] == ada.customer_id
    ]
    registered = next(e for e in whole_log(application) if e.type == "CustomerRegistered")
    assert row["registered_at"] == registered.metadata.occurred_at
    assert isinstance(row["registered_at"], datetime)


def test_the_directory_rebuilt_from_zero_equals_the_one_kept_incrementally(
    application: Application,
    client: FlaskClient,
    admin_headers: dict[str, str],
    register_customer: Callable[..., Customer],
) -> None:
    register_customer("ada@example.com", "Ada Lovelace")
    drain(application, ["customer_directory"])
    register_customer("grace@example.com", "Grace Hopper")
    drain(application, ["customer_directory"])
    kept = contents(application, "customer_directory", 1)

    response = client.post(
        "/admin/api/projections/customer_directory/rebuild", headers=admin_headers
    )
    assert response.status_code == 202
    progress = application.read_side.continue_rebuild("customer_directory")

    assert progress.switched and progress.error is None
    assert contents(application, "customer_directory", 2) == kept
    assert len(kept["customer_directory"]) == 2
    assert rebuilt_from_zero(application, "customer_directory") == kept


@pytest.fixture
def synchronous(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Application]:
    names = frozenset({"catalog", "customer_directory"})
    application = bootstrap(dataclasses.replace(settings, sync_projections=names))
    monkeypatch.setattr(jobs, "_served", jobs.Jobs(application))
    yield application
    application.close()


def test_a_synchronous_directory_holds_the_customer_at_commit_and_the_sweep_changes_nothing(
    synchronous: Application,
) -> None:
    shop = Shop(synchronous.bus)
    ada = shop.customer("ada@example.com", "Ada Lovelace")

    at_commit = contents(synchronous, "customer_directory", 1)
    assert [row["customer_id"] for row in at_commit["customer_directory"]] == [ada]

    jobs.catch_up("customer_directory")

    assert contents(synchronous, "customer_directory", 1) == at_commit
    assert at_commit == rebuilt_from_zero(synchronous, "customer_directory")
