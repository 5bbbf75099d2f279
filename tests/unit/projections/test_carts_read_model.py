"""The carts read model's documents, folded event by event: what a shopper's cart shows,
and that an event the document reflects already changes nothing (a replay)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kernel.event_store import RecordedEvent
from kernel.messages import Event
from kernel.money import Money
from orders.events import (
    CartCheckedOut,
    CartExpired,
    CartItemAdded,
    CartItemQuantityChanged,
    CartItemRemoved,
    CartLine,
    CartMergedInto,
    CartsMerged,
    CartStarted,
    CouponApplied,
)
from projections.carts import Document, empty, fold

CART = "cart-1"
AT = "2026-12-01T12:00:00+00:00"


def eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


def recorded(version: int, event: Event) -> RecordedEvent:
    return RecordedEvent(
        position=version, transaction_id=1, stream_id=f"cart-{CART}", stream_type="cart",
        version=version, type=type(event).__name__, data={},
        recorded_at=datetime(2026, 12, 1, tzinfo=UTC), decoded=event,
    )  # fmt: skip


def folded(*events: Event) -> Document:
    cart = empty(CART)
    for version, event in enumerate(events, start=1):
        assert fold(cart, recorded(version, event))
    return cart


def test_lines_add_up_change_and_go() -> None:
    cart = folded(
        CartStarted(CART, None, AT),
        CartItemAdded(CART, "MUG", "Enamel mug", 2, Money(1250, "EUR"), AT),
        CartItemAdded(CART, "MUG", "Enamel mug", 1, Money(1300, "EUR"), AT),
        CartItemAdded(CART, "TEE", "Logo T-shirt", 1, Money(1999, "EUR"), AT),
        CartItemQuantityChanged(CART, "TEE", 4, AT),
        CartItemRemoved(CART, "TEE", AT),
        CouponApplied(CART, "SAVE10", AT),
    )

    assert cart["lines"] == [
        {"sku": "MUG", "name": "Enamel mug", "quantity": 3, "unit_price": eur(1300)}
    ]
    assert cart["coupon_code"] == "SAVE10" and cart["version"] == 7 and cart["updated_at"] == AT


def test_a_merge_adds_up_and_keeps_the_carts_own_coupon() -> None:
    lines = (
        CartLine("MUG", "Enamel mug", 2, Money(1100, "EUR")),
        CartLine("CAP", "Cap", 1, Money(899, "EUR")),
    )
    cart = folded(
        CartStarted(CART, "customer-1", AT),
        CartItemAdded(CART, "MUG", "Enamel mug", 1, Money(1250, "EUR"), AT),
        CouponApplied(CART, "MINE", AT),
        CartsMerged(CART, "anonymous", lines, None, AT),
    )

    assert cart["lines"] == [
        {"sku": "MUG", "name": "Enamel mug", "quantity": 3, "unit_price": eur(1250)},
        {"sku": "CAP", "name": "Cap", "quantity": 1, "unit_price": eur(899)},
    ]
    assert cart["coupon_code"] == "MINE" and cart["customer_id"] == "customer-1"


def test_checking_out_merging_away_and_expiring_empty_the_cart() -> None:
    added = CartItemAdded(CART, "MUG", "Enamel mug", 1, Money(1250, "EUR"), AT)
    started = CartStarted(CART, "customer-1", AT)

    checked_out = folded(started, added, CartCheckedOut(CART, "order-1", AT))
    merged_away = folded(CartStarted(CART, None, AT), added, CartMergedInto(CART, "mine", AT))
    expired = folded(added, CartExpired(CART, AT, "customer-1"))  # its CartStarted expired

    assert checked_out["lines"] == [] and checked_out["last_order_id"] == "order-1"
    assert merged_away["lines"] == [] and merged_away["merged_into"] == "mine"
    assert expired["lines"] == [] and expired["customer_id"] == "customer-1"


def test_an_event_the_document_reflects_already_changes_nothing() -> None:
    added = CartItemAdded(CART, "MUG", "Enamel mug", 1, Money(1250, "EUR"), AT)
    cart = folded(CartStarted(CART, None, AT), added)
    before = {**cart, "lines": [dict(line) for line in cart["lines"]]}

    assert not fold(cart, recorded(2, added))
    assert cart == before
