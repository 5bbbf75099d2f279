"""A batch applied twice changes nothing; applied once, it builds what the runner builds."""

from __future__ import annotations

import pytest

from config.bootstrap import Container
from tests.integration.projections.mixed_orders import mixed_orders
from tests.support.event_log import whole_log
from tests.support.read_models import ALL_MODELS, contents, is_empty, rebuilt_from_zero
from tests.support.shop import Shop


@pytest.mark.parametrize("name", ALL_MODELS)
def test_applying_the_same_batch_twice_changes_nothing(
    container: Container, shop: Shop, name: str
) -> None:
    mixed_orders(shop, count=24, seed=7)
    batch = whole_log(container)
    subscriber = container.read_side.projection(name).subscriber(1)
    before = contents(container, name, 1)

    with container.engine.connect() as conn:
        subscriber.apply(conn, batch)
        once = contents(container, name, 1)
        subscriber.apply(conn, batch)
        twice = contents(container, name, 1)
        subscriber.apply(conn, batch[len(batch) // 2 :])
        again = contents(container, name, 1)

    assert twice == once
    assert again == once
    assert once == rebuilt_from_zero(container, name)
    if container.read_side.projection(name).mode == "sync":
        assert once == before, "replaying what the commands applied changed the read model"
    else:
        assert is_empty(before)
        assert not is_empty(once)
