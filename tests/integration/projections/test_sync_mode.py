"""A read model declared synchronous is exact at commit, and stays exact once the
workers' periodic sweep has run its catch-up job as well. Read models whose
handlers are not idempotent per stream version refuse to be synchronous."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from config import jobs
from config.bootstrap import Application, bootstrap
from config.settings import Settings
from tests.support.read_models import contents, rebuilt_from_zero
from tests.support.shop import CATALOG, Shop


@pytest.fixture
def synchronous(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Application]:
    application = bootstrap(dataclasses.replace(settings, sync_projections=frozenset({"catalog"})))
    monkeypatch.setattr(jobs, "_served", jobs.Jobs(application))  # the worker's application
    yield application
    application.close()


def test_the_synchronous_catalog_stays_exact_after_the_sweep_catches_it_up(
    synchronous: Application,
) -> None:
    shop = Shop(synchronous.bus, synchronous.provider_calls)
    shop.add_products(CATALOG)
    ada = shop.customer("ada@example.com")
    order = shop.place(ada, {"MUG-1": 2, "TEE-1": 1})
    for step in (shop.reserve, shop.pay, shop.confirm, shop.cancel, shop.refund, shop.release):
        step(order)
    at_commit = contents(synchronous, "catalog", 1)
    assert at_commit == rebuilt_from_zero(synchronous, "catalog")

    jobs.catch_up("catalog")  # what `sweep` runs for every read model, every SWEEP_INTERVAL

    assert contents(synchronous, "catalog", 1) == at_commit, "the sweep applied the events again"


@pytest.mark.parametrize("name", ["order_detail", "sales_analytics", "order_list"])
def test_a_read_model_that_cannot_be_synchronous_says_so(settings: Settings, name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} cannot be"):
        bootstrap(dataclasses.replace(settings, sync_projections=frozenset({name})))
