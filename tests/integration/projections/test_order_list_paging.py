"""Cursor pages of the order list both ways: `cursor` to the older page, `after` back to
the newer one, each page saying whether there are older and newer orders beyond it."""

from __future__ import annotations

import pytest

from config.bootstrap import Application
from projections.queries import OrderListing, Page
from tests.support.read_models import drain
from tests.support.shop import CATALOG, Shop


@pytest.fixture
def order_ids(application: Application, shop: Shop) -> list[str]:
    """Seven orders, newest first; every other one (the 1st, 3rd, ... placed) confirmed."""
    shop.add_products(CATALOG)
    ada = shop.customer("ada@example.com", "Ada Lovelace")
    placed = [shop.place(ada, {"MUG-1": 1}) for _ in range(7)]
    for order in placed[::2]:
        for step in (shop.reserve, shop.pay, shop.confirm):
            step(order)
    drain(application, ["order_list"])
    return [order.order_id for order in reversed(placed)]


def _ids(page: Page) -> list[str]:
    return [item["order_id"] for item in page.items]


def test_paging_older_then_newer_again_walks_the_same_pages(
    application: Application, order_ids: list[str]
) -> None:
    listing = OrderListing(application.redis)

    first = listing(1, limit=3)
    second = listing(1, cursor=int(first.next_cursor or 0), limit=3)
    last = listing(1, cursor=int(second.next_cursor or 0), limit=3)

    assert [_ids(first), _ids(second), _ids(last)] == [
        order_ids[0:3],
        order_ids[3:6],
        order_ids[6:],
    ]
    assert first.newer_cursor is None, "nothing is newer than the newest page"
    assert last.next_cursor is None, "nothing is older than the oldest order"
    assert second.newer_cursor == str(second.items[0]["seq"])

    back = listing(1, after=int(last.newer_cursor or 0), limit=3)
    assert _ids(back) == _ids(second)
    assert back.next_cursor == str(second.items[-1]["seq"])
    assert back.newer_cursor == str(second.items[0]["seq"])
    newest = listing(1, after=int(back.newer_cursor or 0), limit=3)
    assert _ids(newest) == _ids(first)
    assert newest.newer_cursor is None
    assert newest.next_cursor == first.next_cursor


def test_paging_back_by_status_skips_the_other_orders(
    application: Application, order_ids: list[str]
) -> None:
    listing = OrderListing(application.redis)
    confirmed = order_ids[::2]  # the 7th, 5th, 3rd and 1st placed

    first = listing(1, status="confirmed", limit=2)
    second = listing(1, status="confirmed", cursor=int(first.next_cursor or 0), limit=2)
    back = listing(1, status="confirmed", after=int(second.newer_cursor or 0), limit=2)

    assert (_ids(first), _ids(second), _ids(back)) == (confirmed[:2], confirmed[2:], confirmed[:2])
    assert second.next_cursor is None
    assert back.newer_cursor is None


def test_past_either_end_there_is_nothing_and_no_cursor(
    application: Application, order_ids: list[str]
) -> None:
    listing = OrderListing(application.redis)
    newest_seq = listing(1, limit=1).items[0]["seq"]
    oldest_seq = listing(1, limit=100).items[-1]["seq"]

    beyond_newest = listing(1, after=newest_seq, limit=3)
    beyond_oldest = listing(1, cursor=oldest_seq, limit=3)

    assert beyond_newest == Page([], None, None)
    assert beyond_oldest == Page([], None, None)
    assert listing(1, after=0, limit=3).newer_cursor is not None
    assert _ids(listing(1, after=0, limit=3)) == order_ids[-3:]
