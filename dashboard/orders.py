"""Orders: the list (filters, newest first, cursor pages) and one order's story."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import marshmallow as ma
from flask import Blueprint, Response, request
from marshmallow import validate

from dashboard.causality import link
from dashboard.common import field_errors, freshness, page, problem
from dashboard.services import Services
from projections.queries import MAX_PAGE, OrderDetail, OrderHistory, OrderListing
from projections.schemas import ORDER_STATUSES

PAGE_SIZE = 25
SCAN_LIMIT = 2000  # orders looked at per page when a date range filters them


class FiltersSchema(ma.Schema):
    status = ma.fields.String(validate=validate.OneOf(ORDER_STATUSES))
    customer = ma.fields.String(validate=validate.Length(min=1, max=64))
    from_ = ma.fields.Date(data_key="from")
    to = ma.fields.Date()
    cursor = ma.fields.Integer(validate=validate.Range(min=0))

    @ma.validates_schema
    def ordered(self, data: dict[str, Any], **_: object) -> None:
        start, end = data.get("from_"), data.get("to")
        if start and end and start > end:
            raise ma.ValidationError("must not be before `from`", "to")


@dataclass(frozen=True, slots=True)
class Found:
    items: list[dict[str, Any]]
    next_cursor: int | None


def blueprint(services: Services) -> Blueprint:
    """The order list and each order's page, read from the read side of `services`."""
    pages = Blueprint("orders", __name__)
    side = services.read_side

    @pages.get("/orders")
    def index() -> Response:
        """Every order, newest first, by status, customer and day placed (UTC)."""
        raw = {key: value for key, value in request.args.items() if value.strip()}
        errors: dict[str, list[str]] = {}
        try:
            filters = FiltersSchema().load(raw)
        except ma.ValidationError as error:
            errors = field_errors(error)
            filters = {}
        fresh = freshness(side, "order_list")
        generation = side.generations("order_list").active
        found = newest_first(
            OrderListing(services.redis),
            generation,
            status=filters.get("status"),
            customer_id=filters.get("customer"),
            start=filters.get("from_"),
            end=filters.get("to"),
            cursor=filters.get("cursor"),
            limit=PAGE_SIZE,
        )
        kept = {key: value for key, value in raw.items() if key != "cursor" and key not in errors}
        return page(
            "dashboard/orders.html",
            status=422 if errors else 200,
            fresh=fresh,
            orders=found.items,
            next_cursor=found.next_cursor,
            paged=filters.get("cursor") is not None,
            filters=kept,
            errors=errors,
            statuses=ORDER_STATUSES,
        )

    @pages.get("/orders/<uuid:order_id>")
    def detail(order_id: uuid.UUID) -> Response:
        """One order: its document, status timeline and every event with its causes."""
        fresh = freshness(side, "order_detail")
        document = OrderDetail(side.engine)(side.generations("order_detail").active, str(order_id))
        history = OrderHistory(side.store, side.engine)(str(order_id))
        if document is None and not history:
            return problem(404, "There is no such order.")
        return page(
            "dashboard/order.html",
            fresh=fresh,
            order_id=str(order_id),
            order=document,
            history=link(history, str(order_id)),
            types={event["position"]: event["type"] for event in history},
        )

    return pages


def newest_first(
    listing: OrderListing,
    generation: int,
    *,
    status: str | None,
    customer_id: str | None,
    start: date | None,
    end: date | None,
    cursor: int | None,
    limit: int,
) -> Found:
    """One page of the order list; a date range is applied while walking it newest
    first (orders are scored by log position, so placement days only go back in time)."""
    items: list[dict[str, Any]] = []
    scanned = 0
    while True:
        batch = listing(
            generation, customer_id=customer_id, status=status, cursor=cursor, limit=MAX_PAGE
        )
        for index, item in enumerate(batch.items):
            scanned += 1
            cursor = item["seq"]
            day = datetime.fromisoformat(item["placed_at"]).date()
            if start is not None and day < start:
                return Found(items, None)
            if end is not None and day > end:
                continue
            items.append(item)
            if len(items) == limit:
                more = index < len(batch.items) - 1 or batch.next_cursor is not None
                return Found(items, cursor if more else None)
        if batch.next_cursor is None:
            return Found(items, None)
        if scanned >= SCAN_LIMIT:
            return Found(items, cursor)
