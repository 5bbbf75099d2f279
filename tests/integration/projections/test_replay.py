"""A batch applied twice changes nothing; applied once, it builds what the runner builds."""

from __future__ import annotations

import pytest

from config.bootstrap import Application
from tests.integration.projections.mixed_orders import mixed_orders
from tests.support.event_log import whole_log
from tests.support.leases import let_go, sole_lease
from tests.support.read_models import ALL_MODELS, contents, is_empty, rebuilt_from_zero
from tests.support.shop import Shop


@pytest.mark.parametrize("name", ALL_MODELS)
def test_applying_the_same_batch_twice_changes_nothing(
    application: Application, shop: Shop, name: str
) -> None:
    mixed_orders(shop, count=24, seed=7)
    batch = whole_log(application)
    subscriber = application.read_side.projection(name).subscriber(1)
    before = contents(application, name, 1)

    lease = sole_lease(application, subscriber)
    with application.engine.connect() as conn:
        subscriber.apply(conn, batch, lease)
        once = contents(application, name, 1)
        subscriber.apply(conn, batch, lease)
        twice = contents(application, name, 1)
        subscriber.apply(conn, batch[len(batch) // 2 :], lease)
        again = contents(application, name, 1)
    let_go(application, lease)

    assert twice == once
    assert again == once
    assert once == rebuilt_from_zero(application, name)
    if application.read_side.projection(name).mode == "sync":
        assert once == before, "replaying what the commands applied changed the read model"
    else:
        assert is_empty(before)
        assert not is_empty(once)
