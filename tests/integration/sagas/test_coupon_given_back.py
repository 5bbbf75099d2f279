"""A coupon's use held by an order that ends cancelled goes back to the coupon, through the
real bus and the saga: a one-use coupon redeemed by an order whose card is declined can be
used by the next order."""

from __future__ import annotations

from config.bootstrap import Application
from kernel.messages import new_id
from kernel.results import Failure
from orders.commands import OrderLineRequest, PlaceOrder
from pricing.commands import CreateCoupon
from tests.integration.sagas.support import sagas, settle
from tests.support.shop import ADDRESS, Shop


def place_with_coupon(customer_id: str, token: str) -> PlaceOrder:
    lines = (OrderLineRequest("MUG-1", 1),)
    return PlaceOrder(new_id(), customer_id, lines, ADDRESS, token, coupon_code="once")


def test_a_cancelled_orders_coupon_use_is_given_back_for_the_next_order(
    jobs: None, application: Application
) -> None:
    shop = Shop(application.bus)
    shop.add_product("MUG-1", stock=10)
    shop.do(CreateCoupon("ONCE", "one use only", usage_limit=1, percent_bp=1000))
    ada = shop.customer("ada@example.com")

    declined = place_with_coupon(ada, "pm_card_visa_chargeDeclined")
    shop.do(declined)
    refused = application.bus.dispatch(place_with_coupon(ada, "pm_card_visa"))
    assert isinstance(refused, Failure) and refused.code == "coupon_exhausted"

    settle(application)  # reserved, declined, cancelled: the coupon's use goes back
    saga = sagas(application)[declined.order_id]
    assert (saga["state"], saga["data"]["coupon_code"]) == ("compensated", "ONCE")
    cancelled = {(m["trigger"], tuple(m["commands"])) for m in saga["history"]}
    assert ("OrderCancelled", ("ReleaseCouponRedemption ok",)) in cancelled

    shop.do(place_with_coupon(ada, "pm_card_visa"))  # the use is free again
