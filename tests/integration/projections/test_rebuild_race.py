"""A catch-up job that read the generations just before a rebuild switched them carries
on with the retired generation: that must not bring back what the switch purged."""

from __future__ import annotations

import pytest

from config.bootstrap import Application
from tests.support.read_models import contents, drain, is_empty
from tests.support.shop import CATALOG, Shop


@pytest.mark.parametrize("name", ["order_detail", "order_list"])
def test_a_catch_up_job_begun_before_the_switch_leaves_the_retired_generation_purged(
    application: Application, shop: Shop, name: str
) -> None:
    shop.add_products(CATALOG)
    ada = shop.customer("ada@example.com")
    for quantity in (1, 2, 3):
        shop.place(ada, {"MUG-1": quantity})
    drain(application, [name])
    application.read_side.start_rebuild(name)
    in_flight = application.read_side.subscribers(name)  # a catch-up job on one worker read these
    progress = application.read_side.continue_rebuild(name)  # the rebuild job on another switched
    assert progress.switched
    assert is_empty(contents(application, name, 1))

    for subscriber in in_flight:  # the catch-up job carries on
        application.runner.run(subscriber)

    assert application.read_side.generations(name).active == 2
    assert is_empty(contents(application, name, 1)), (
        "the retired generation was replayed from zero again, and nothing will ever purge it"
    )
