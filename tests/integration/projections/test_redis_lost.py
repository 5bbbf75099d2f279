"""The Redis order list loses its data (flush, restart without persistence) while a runner
is draining it: it must still end up complete, replayed from the first event."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import pytest
from redis.client import Pipeline
from sqlalchemy import Connection

from config.bootstrap import Application
from kernel.event_store import START, Checkpoint, EventStore, RecordedEvent
from kernel.subscriptions import SubscriptionRunner
from projections.order_list import OrderListGeneration
from tests.support.event_log import whole_log
from tests.support.read_models import contents, drain, rebuilt_from_zero
from tests.support.shop import CATALOG, Shop

BATCH = 6  # the first batch: 3 products, 1 customer and 2 of the orders


class FlushingStore(EventStore):
    """Reads like the real store; Redis loses everything before the second batch is read."""

    def __init__(self, application: Application) -> None:
        super().__init__(application.registry)
        self.redis = application.redis
        self.reads = 0

    def read_all(
        self,
        conn: Connection,
        after: Checkpoint = START,
        limit: int = 1000,
        types: Collection[str] | None = None,
        **partition: Any,
    ) -> list[RecordedEvent]:
        self.reads += 1
        if self.reads == 2:
            self.redis.flushdb()
        return super().read_all(conn, after, limit, types, **partition)


class FlushingOrderList(OrderListGeneration):
    """The real generation; Redis loses everything while the second batch is being applied."""

    loads = 0

    def load(self, redis: Pipeline, events: Sequence[RecordedEvent]) -> Any:
        self.loads += 1
        if self.loads == 2:
            self.redis.flushdb()
        return super().load(redis, events)


@pytest.mark.parametrize("when", ["between batches", "inside a batch"])
def test_the_order_list_is_complete_after_redis_lost_its_data_mid_drain(
    application: Application, shop: Shop, when: str
) -> None:
    shop.add_products(CATALOG)
    ada = shop.customer("ada@example.com")
    orders = [shop.place(ada, {"MUG-1": 1}) for _ in range(6)]
    assert len(whole_log(application)) == 10
    if when == "between batches":
        runner = SubscriptionRunner(
            application.engine, FlushingStore(application), batch_size=BATCH
        )
        runner.run(application.read_side.projection("order_list").subscriber(1))
    else:
        runner = SubscriptionRunner(application.engine, application.store, batch_size=BATCH)
        runner.run(FlushingOrderList(application.redis, 1))

    drain(application, ["order_list"])  # what any later catch-up job does

    listed = contents(application, "order_list", 1)
    assert sorted(member for member, _ in listed.get("all", [])) == sorted(
        order.order_id for order in orders
    ), "orders applied before Redis lost its data are missing for good"
    assert listed == rebuilt_from_zero(application, "order_list")
