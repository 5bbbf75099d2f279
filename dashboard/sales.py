"""Sales: revenue and orders per day as a chart, rates over the range, top products."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import marshmallow as ma
from flask import Blueprint, Response, request

from dashboard.charts import BarChart, Point, bar_chart
from dashboard.common import field_errors, freshness, page
from dashboard.filters import money
from dashboard.services import Services
from projections.queries import SalesByDay, TopProducts
from projections.schemas import SalesArgsSchema

DEFAULT_DAYS = 14


@dataclass
class Currency:
    """One currency's figures over the range (money never adds across currencies)."""

    currency: str
    days: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: int = 0
    revenue: int = 0
    cancellations: int = 0
    refunds: int = 0
    refunded: int = 0
    chart: BarChart | None = None

    @property
    def average_order_value(self) -> int:
        return self.revenue // self.orders if self.orders else 0

    @property
    def cancellation_rate(self) -> float | None:
        """Cancellations among the orders decided in the range (confirmed or cancelled)."""
        decided = self.orders + self.cancellations
        return self.cancellations / decided if decided else None

    @property
    def refund_rate(self) -> float | None:
        """Refunds per confirmed order."""
        return self.refunds / self.orders if self.orders else None


def blueprint(services: Services) -> Blueprint:
    """The sales page over the sales_analytics read model of `services`."""
    pages = Blueprint("sales", __name__)
    side = services.read_side

    @pages.get("/sales")
    def index() -> Response:
        """Revenue per day for a range of days (UTC), in each currency sold."""
        today = datetime.now(UTC).date()
        first = today - timedelta(days=DEFAULT_DAYS - 1)
        wanted = {
            "from": request.args.get("from") or first.isoformat(),
            "to": request.args.get("to") or today.isoformat(),
        }
        errors: dict[str, list[str]] = {}
        try:
            args = SalesArgsSchema().load(wanted)
            start, end = args["from_"], args["to"]
        except ma.ValidationError as error:
            errors = field_errors(error)
            start, end = first, today
        with side.query() as conn:
            fresh = freshness(side, "sales_analytics", conn=conn)
            rows = SalesByDay(conn)(fresh.generation, start, end)
            top = TopProducts(conn)(fresh.generation, 10)
        currencies = summarise(rows, start, end)
        return page(
            "dashboard/sales.html",
            status=422 if errors else 200,
            fresh=fresh,
            wanted=wanted,
            errors=errors,
            start=start,
            end=end,
            currencies=currencies,
            top=top,
        )

    return pages


def summarise(rows: list[dict[str, Any]], start: date, end: date) -> list[Currency]:
    """Totals per currency and a chart of revenue per day (days without sales are zero)."""
    found: dict[str, Currency] = {}
    for row in rows:
        summary = found.setdefault(row["currency"], Currency(row["currency"]))
        summary.days[row["day"]] = row
        summary.orders += row["orders"]
        summary.revenue += row["revenue"]
        summary.cancellations += row["cancellations"]
        summary.refunds += row["refunds"]
        summary.refunded += row["refunded"]
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    for summary in found.values():
        points = []
        for day in days:
            row = summary.days.get(day.isoformat(), {})
            orders, revenue = row.get("orders", 0), row.get("revenue", 0)
            title = f"{day.isoformat()}: {money(revenue, summary.currency)}, {orders} orders"
            points.append(
                Point(day.strftime("%b %d"), revenue, str(orders) if orders else "", title)
            )
        summary.chart = bar_chart(points)
    return sorted(found.values(), key=lambda summary: -summary.revenue)
