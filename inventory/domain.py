"""Placeholder until the inventory aggregates land."""

from kernel.aggregate import Aggregate
from kernel.money import Money


class StockItem(Aggregate):
    stream_type = "stock_item"
    name: str = ""
    price: Money = Money(0, "EUR")
