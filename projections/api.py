# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""GET endpoints: storefront and admin queries, each answered from one read model.

Every answer says how far behind the log its read model is (`read_model` in the
body, `X-Read-Model-Lag` / `X-Read-Model-Lag-Seconds` headers), and, read from a
streaming replica, how far that is behind the primary (`X-Replica-Lag-Seconds` /
`-Bytes`). Given a command's
consistency token, a query first waits (bounded) until the read model has
applied that command; if the bound runs out it answers anyway, marked stale (and
a document it does not hold yet is 503 not-visible-yet, not 404). A token naming no
event in the log is refused at once. Waiting queries share one watcher per process
(projections.progress), so waiters add no database load.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, NoReturn

from flask import request
from redis import Redis
from sqlalchemy import Connection

from kernel.auth import Authenticator
from kernel.horizon import HELD_BACK_AFTER
from kernel.http import (
    ADMIN_ONLY,
    OPERATOR_ONLY,
    BearerAuth,
    Blueprint,
    documented_problem,
    guarded,
    reject,
)
from kernel.status_api import running_writer, subscription_status
from projections.generations import Build, OlderCode
from projections.queries import (
    OrderDetail,
    OrderHistory,
    OrderListing,
    Page,
    ProductFilter,
    ProductList,
    SalesByDay,
    TaxDisplay,
    TopProducts,
    shelf_price,
)
from projections.read_side import Freshness, NotInLog, ProjectionStatus, ReadSide
from projections.schemas import (
    SKU,
    AdminOrderDetailSchema,
    AdminOrdersArgsSchema,
    ConsistencySchema,
    OrderDetailSchema,
    OrderPageSchema,
    PageArgsSchema,
    ProductArgsSchema,
    ProductDetailArgsSchema,
    ProductDetailSchema,
    ProductListSchema,
    ProjectionsSchema,
    RebuildAcceptedSchema,
    SalesArgsSchema,
    SalesSchema,
    TopProductsArgsSchema,
    TopProductsSchema,
)

_CUSTOMER = "shop.customer_id"  # request.environ key
NOT_VISIBLE_YET = (
    "The consistency token's write is not applied yet, so the order may exist "
    "(problem type /problems/not-visible-yet; retry after Retry-After)"
)
RETRY_NOT_VISIBLE_AFTER = 1  # seconds

LAG_HEADERS = {
    "X-Read-Model-Lag": {"description": "Events the read model is behind the log",
                         "schema": {"type": "integer"}},
    "X-Read-Model-Lag-Seconds": {"description": "Age of the oldest event not yet applied",
                                 "schema": {"type": "number"}},
    "X-Replica-Lag-Seconds": {"description": "Read from a streaming replica (READ_DATABASE_URL):"
                              " how far its data is behind the primary's, in seconds (0 once it"
                              " replayed all it received); absent when read from the primary",
                              "schema": {"type": "number"}},
    "X-Replica-Lag-Bytes": {"description": "Read from a streaming replica: WAL it received and"
                            " has not replayed yet; absent when read from the primary",
                            "schema": {"type": "integer"}},
}  # fmt: skip


def blueprint(
    read_side: ReadSide,
    redis: Redis,
    authenticator: Authenticator,
    schedule_rebuild: Callable[[str], None],
    tax_display: TaxDisplay | None = None,
) -> Blueprint:
    """The queries, answered from `read_side`'s read models (the order list from `redis`);
    `schedule_rebuild(name)` puts a started rebuild in the workers' hands; `tax_display`
    says how a destination shows prices (None: products get no shelf price)."""
    blp = Blueprint("queries", __name__, description="Storefront and admin queries")
    auth = BearerAuth(authenticator)
    problem = documented_problem

    def customer() -> str:
        """The calling customer's id, verified once per request (the guard and the view ask).
        Kept in the WSGI environ, which lives exactly as long as the request."""
        found: str | None = request.environ.get(_CUSTOMER)
        if found is None:
            found = request.environ[_CUSTOMER] = auth.customer()
        return found

    def shelved(
        conn: Connection, products: list[dict[str, Any]], country: str | None
    ) -> list[dict[str, Any]]:
        """Each product with its shelf price for `country` (as they are without one)."""
        if country is None:
            return products
        tax = None if tax_display is None else tax_display(conn, country)
        return [
            product | {"shelf_price": shelf_price(product["price"], tax)} for product in products
        ]

    customer_only = guarded(blp, customer, "The admin token cannot act as a customer")
    admin_only = guarded(blp, auth.admin, ADMIN_ONLY)
    operator_only = guarded(blp, auth.operator, OPERATOR_ONLY)

    @blp.route("/api/products", methods=["GET"])
    @blp.arguments(ProductArgsSchema(), location="query")
    @blp.response(200, ProductListSchema, headers=LAG_HEADERS)
    def products(args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """The catalog with prices and available stock, by SKU in pages, optionally
        searched (name or SKU), in stock only and within a price range; with `country`,
        each price also as a storefront shipping there shows it (with tax or net)."""
        wanted = ProductFilter(
            q=args.get("q"),
            in_stock=args.get("in_stock"),
            min_price=args.get("min_price"),
            max_price=args.get("max_price"),
        )
        with reading(read_side, "catalog", args) as (conn, found):
            page = ProductList(conn)(
                found.generation, wanted, cursor=args.get("cursor"), limit=args["limit"]
            )
            items = shelved(conn, page.items, args.get("country"))
        body = {"items": items, "next_cursor": page.next_cursor}
        return body | {"read_model": found.described}, found.headers

    @blp.route("/api/products/<string:sku>", methods=["GET"])
    @blp.arguments(ProductDetailArgsSchema(), location="query")
    @blp.response(200, ProductDetailSchema, headers=LAG_HEADERS)
    @problem(blp, 404, "No such product in the catalog")
    @problem(blp, 503, NOT_VISIBLE_YET.replace("the order", "the product"))
    def product(args: dict[str, Any], sku: str) -> tuple[dict[str, Any], dict[str, str]]:
        """One product: its name, price and available stock."""
        with reading(read_side, "catalog", args) as (conn, found):
            # Not SKU-shaped (a NUL PostgreSQL would refuse, say): no product has it.
            known = re.match(SKU, sku) is not None
            listed = ProductList(conn).one(found.generation, sku) if known else None
            if listed is None:
                missing(found, "product")
            (shown,) = shelved(conn, [listed], args.get("country"))
        return {"product": shown, "read_model": found.described}, found.headers

    @blp.route("/api/orders", methods=["GET"])
    @customer_only
    @blp.arguments(PageArgsSchema(), location="query")
    @blp.response(200, OrderPageSchema, headers=LAG_HEADERS)
    def my_orders(args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """The customer's own orders, newest first."""
        customer_id = customer()
        found = fresh(read_side, "order_list", args)
        page = OrderListing(redis)(
            found.generation,
            customer_id=customer_id,
            cursor=args.get("cursor"),
            limit=args["limit"],
        )
        return _page(page, found)

    @blp.route("/api/orders/<uuid:order_id>", methods=["GET"])
    @customer_only
    @blp.arguments(ConsistencySchema(), location="query")
    @blp.response(200, OrderDetailSchema, headers=LAG_HEADERS)
    @problem(blp, 404, "No such order among the customer's orders")
    @problem(blp, 503, NOT_VISIBLE_YET)
    def my_order(
        args: dict[str, Any], order_id: uuid.UUID
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """One of the customer's orders in full, with its status timeline."""
        customer_id = customer()
        with reading(read_side, "order_detail", args) as (conn, found):
            document = OrderDetail(conn)(found.generation, str(order_id))
        if document is None or document["customer_id"] != customer_id:
            missing(found)
        return {"order": document, "read_model": found.described}, found.headers

    @blp.route("/admin/api/orders", methods=["GET"])
    @admin_only
    @blp.arguments(AdminOrdersArgsSchema(), location="query")
    @blp.response(200, OrderPageSchema, headers=LAG_HEADERS)
    def all_orders(args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Every order, newest first, optionally by status and customer."""
        found = fresh(read_side, "order_list", args)
        page = OrderListing(redis)(
            found.generation,
            customer_id=args.get("customer_id"),
            status=args.get("status"),
            cursor=args.get("cursor"),
            limit=args["limit"],
        )
        return _page(page, found)

    @blp.route("/admin/api/orders/<uuid:order_id>", methods=["GET"])
    @admin_only
    @blp.arguments(ConsistencySchema(), location="query")
    @blp.response(200, AdminOrderDetailSchema, headers=LAG_HEADERS)
    @problem(blp, 404, "No such order")
    @problem(blp, 503, NOT_VISIBLE_YET)
    def order_with_history(
        args: dict[str, Any], order_id: uuid.UUID
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """An order in full plus every event about it, with correlation and causation ids."""
        with reading(read_side, "order_detail", args) as (conn, found):
            document = OrderDetail(conn)(found.generation, str(order_id))
            history = []
            if document is not None:
                history = OrderHistory(read_side.store, conn)(str(order_id))
        if document is None:
            missing(found)
        body = {"order": document, "history": history, "read_model": found.described}
        return body, found.headers

    @blp.route("/admin/api/analytics/sales", methods=["GET"])
    @admin_only
    @blp.arguments(SalesArgsSchema(), location="query")
    @blp.response(200, SalesSchema, headers=LAG_HEADERS)
    def sales(args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Revenue, orders, average order value, cancellations and refunds per day."""
        start: date = args["from_"]
        with reading(read_side, "sales_analytics", args) as (conn, found):
            days = SalesByDay(conn)(found.generation, start, args["to"])
        return {"days": days, "read_model": found.described}, found.headers

    @blp.route("/admin/api/analytics/top-products", methods=["GET"])
    @admin_only
    @blp.arguments(TopProductsArgsSchema(), location="query")
    @blp.response(200, TopProductsSchema, headers=LAG_HEADERS)
    def top_products(args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Best-selling products by revenue (confirmed orders that stayed confirmed)."""
        with reading(read_side, "sales_analytics", args) as (conn, found):
            items = TopProducts(conn)(found.generation, args["limit"])
        return {"items": items, "read_model": found.described}, found.headers

    @blp.route("/admin/api/projections", methods=["GET"])
    @admin_only
    @blp.response(200, ProjectionsSchema)
    def projections() -> dict[str, Any]:
        """Each read model's checkpoint, the log head, lag and state (and any rebuild), per
        partition with its lease holder; and the writers holding every subscription back."""
        return {
            "projections": [_status(status) for status in read_side.status()],
            "held_back_by": [
                running_writer(w) for w in read_side.writers_holding_back(HELD_BACK_AFTER)
            ],
            "replicas": _replicas(read_side),
        }

    @blp.route("/admin/api/projections/<name>/rebuild", methods=["POST"])
    @operator_only
    @blp.response(202, RebuildAcceptedSchema)
    @problem(blp, 404, "No read model of that name")
    @problem(
        blp,
        409,
        "The active generation was built with a newer version of the read model than this"
        " API process runs (a release being rolled out): ask again once it is done",
    )
    def rebuild(name: str) -> dict[str, Any]:
        """Replay the log into a new generation; queries switch to it once it caught up.
        A rebuild already under way is the answer (its generation)."""
        if name not in read_side.projections:
            reject(404, f"There is no read model named {name!r}.")
        try:
            generation = read_side.start_rebuild(name, auth.operator().actor)
        except OlderCode as older:
            reject(409, f"{older}: a rebuild here would go back to it.", code="older_code")
        schedule_rebuild(name)
        return {"name": name, "generation": generation}

    return blp


@dataclass(frozen=True, slots=True)
class Fresh:
    generation: int  # the generation to read
    described: dict[str, Any]  # the `read_model` body field
    headers: dict[str, str]  # the lag headers


def fresh(
    read_side: ReadSide, name: str, args: dict[str, Any], conn: Connection | None = None
) -> Fresh:
    """The read model's freshness after the bounded wait, on `conn` when given (without,
    on a connection of its own given back at once: the Redis order list needs no more)."""
    token = args.get("consistency_token") or request.headers.get("X-Consistency-Token")
    try:
        freshness = read_side.freshness(name, token, conn)
    except NotInLog:
        reject(
            422,
            "The consistency token names no event in the log: it was not issued here.",
            errors={"consistency_token": ["Names no event in the log."]},
        )
    except ValueError:
        reject(422, "The consistency token is malformed.", errors={"consistency_token": ["bad"]})
    return Fresh(freshness.generation, _described(name, freshness), _headers(freshness))


def missing(found: Fresh, what: str = "order") -> NoReturn:
    """Answer a document the read model does not hold: 404 when the read model has applied
    the caller's consistency token (or none was given), else 503 not-visible-yet, since the
    caller's own write may be what it has not applied yet."""
    if found.described["stale"]:
        reject(
            503,
            "The read model has not applied your write yet; try again shortly.",
            code="not_visible_yet",
            headers={**found.headers, "Retry-After": str(RETRY_NOT_VISIBLE_AFTER)},
        )
    reject(404, f"No such {what}.", headers=found.headers)


@contextmanager
def reading(
    read_side: ReadSide, name: str, args: dict[str, Any]
) -> Iterator[tuple[Connection, Fresh]]:
    """One connection for the freshness check and the query's reads: one pool checkout
    (and any pre-ping) per request rather than one per group of statements."""
    with read_side.query() as conn:
        yield conn, fresh(read_side, name, args, conn)


def _described(name: str, freshness: Freshness) -> dict[str, Any]:
    return {
        "name": name,
        "lag_events": freshness.lag_events,
        "lag_seconds": round(freshness.lag_seconds, 3),
        "stale": freshness.stale,
    }


def _headers(freshness: Freshness) -> dict[str, str]:
    headers = {
        "X-Read-Model-Lag": str(freshness.lag_events),
        "X-Read-Model-Lag-Seconds": f"{freshness.lag_seconds:.3f}",
    }
    if freshness.replica is not None:
        headers["X-Replica-Lag-Seconds"] = f"{freshness.replica.seconds:.3f}"
        headers["X-Replica-Lag-Bytes"] = str(freshness.replica.bytes)
    if freshness.stale:
        headers["X-Read-Model-Stale"] = "true"
    return headers


def _page(page: Page, found: Fresh) -> tuple[dict[str, Any], dict[str, str]]:
    body = {"items": page.items, "next_cursor": page.next_cursor, "read_model": found.described}
    return body, found.headers


def _status(status: ProjectionStatus) -> dict[str, Any]:
    main = subscription_status(status.subscription)
    current = status.generations
    rebuild = None
    if status.rebuild and current.building is not None:
        rebuild = {
            **subscription_status(status.rebuild),
            "generation": current.building,
            **_build(current.rebuild),
            "started_at": current.rebuild_started_at,
        }
    return {
        "name": status.name,
        "store": status.store,
        "mode": status.mode,
        "generation": status.generation,
        **_build(current.built),
        "code_version": status.code_version,
        **main,
        "rebuild": rebuild,
    }


def _replicas(read_side: ReadSide) -> list[dict[str, Any]]:
    if read_side.replicas is None:
        return []
    return [
        {
            "name": replica.name,
            "reachable": lag is not None,
            "lag_seconds": None if lag is None else round(lag.seconds, 3),
            "lag_bytes": None if lag is None else lag.bytes,
            "replay_paused": None if lag is None else lag.paused,
            "replayed_at": None if lag is None else lag.replayed_at,
            "error": error,
        }
        for replica, lag, error in read_side.replicas.statuses()
    ]


def _build(build: Build | None) -> dict[str, Any]:
    if build is None:
        return {"version": None, "reason": None, "requested_by": None}
    return {"version": build.version, "reason": build.reason, "requested_by": build.requested_by}
