"""A coupon's usage limit holds however placements race: each redemption is an event on
the coupon's stream, appended in the placing transaction under the stream's lock, so
100 placements with a 10-use coupon place exactly 10 orders and refuse 90."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from config.bootstrap import Application
from inventory.commands import AddProduct
from kernel.messages import new_id
from kernel.money import Money
from kernel.results import Failure, Result, Success
from orders.commands import OrderLineRequest, PlaceOrder, RegisterCustomer
from pricing.commands import CreateCoupon, ReleaseCouponRedemption
from tests.support.shop import ADDRESS, PASSWORD_HASH

RACERS = 100
USES = 10


def _count(application: Application, sql: str) -> int:
    with application.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_a_ten_use_coupon_redeems_exactly_ten_of_a_hundred_concurrent_placements(
    application: Application,
) -> None:
    bus = application.bus
    assert isinstance(bus.dispatch(AddProduct("MUG-1", "Mug", Money(1250, "EUR"), 1000)), Success)
    assert isinstance(
        bus.dispatch(CreateCoupon("RUSH", "Rush hour", usage_limit=USES, percent_bp=1000)),
        Success,
    )
    customers = [new_id() for _ in range(RACERS)]
    for n, customer_id in enumerate(customers):
        registered = bus.dispatch(
            RegisterCustomer(customer_id, f"racer{n}@example.com", "Racer", PASSWORD_HASH)
        )
        assert isinstance(registered, Success)
    start = threading.Barrier(RACERS)

    def place(customer_id: str) -> Result:
        command = PlaceOrder(
            new_id(), customer_id, (OrderLineRequest("MUG-1", 1),), ADDRESS, "pm_card_visa",
            coupon_code="rush",
        )  # fmt: skip
        start.wait()
        return bus.dispatch(command)

    with ThreadPoolExecutor(RACERS) as pool:
        results = list(pool.map(place, customers))

    placed = [result for result in results if isinstance(result, Success)]
    refused = [result for result in results if isinstance(result, Failure)]
    assert len(placed) == USES
    assert {result.code for result in refused} == {"coupon_exhausted"}
    assert len(refused) == RACERS - USES
    assert _count(application, "SELECT count(*) FROM events WHERE type = 'OrderPlaced'") == USES
    assert _count(application, "SELECT count(*) FROM events WHERE type = 'CouponRedeemed'") == USES
    assert _count(application, "SELECT redemptions FROM pricing_coupons") == USES

    # A cancelled order's use comes back: one more placement gets it.
    assert isinstance(
        bus.dispatch(ReleaseCouponRedemption("RUSH", placed[0].aggregate_id)), Success
    )
    late = PlaceOrder(new_id(), customers[-1], (OrderLineRequest("MUG-1", 1),), ADDRESS,
                      "pm_card_visa", coupon_code="RUSH")  # fmt: skip
    assert isinstance(bus.dispatch(late), Success)
    assert _count(application, "SELECT redemptions FROM pricing_coupons") == USES
