# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""GET endpoints of carts: a cart as it stands, at today's prices and stock.

The cart itself comes from the carts read model (Redis), waiting for a command's
consistency token as every query does (projections.api); prices and stock come from the
catalog read model, as of now; the totals with discounts, tax and shipping from the
pricing context, through the `quote_cart` callable the composition root passes in (the
read side may not import that context).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from redis import Redis

from kernel.auth import Authenticator
from kernel.http import BearerAuth, Blueprint, bearer_token, documented_problem, guarded, reject
from orders.commands import customer_cart_id
from projections import carts
from projections.api import LAG_HEADERS, NOT_VISIBLE_YET, RETRY_NOT_VISIBLE_AFTER, reading
from projections.cart_schemas import CartArgsSchema, CartViewSchema
from projections.queries import CartView, QuoteCart
from projections.read_side import ReadSide

NO_CART = "No such cart, or not yours (a customer's cart answers only its customer)"


def blueprint(
    read_side: ReadSide,
    redis: Redis,
    authenticator: Authenticator,
    ttl: timedelta,
    quote_cart: QuoteCart | None = None,
) -> Blueprint:
    """The cart queries: carts from `redis` (as `read_side` knows its generations), carts
    idle longer than `ttl` shown expired, quotes from `quote_cart` (None: no quote)."""
    blp = Blueprint("cart_queries", __name__, description="Carts as their shoppers see them")
    auth = BearerAuth(authenticator)
    customer_only = guarded(blp, auth.customer, "The admin token cannot act as a customer")

    def caller() -> str | None:
        return None if bearer_token() is None else auth.customer()

    @blp.route("/api/carts/<uuid:cart_id>", methods=["GET"])
    @blp.doc(security=[{}, {"bearer": []}])
    @blp.arguments(CartArgsSchema(), location="query")
    @blp.response(200, CartViewSchema, headers=LAG_HEADERS)
    @documented_problem(blp, 401, "A bearer token was sent and is forged, expired or revoked")
    @documented_problem(blp, 403, "The admin token cannot act as a customer")
    @documented_problem(blp, 404, NO_CART)
    @documented_problem(blp, 503, NOT_VISIBLE_YET)
    def cart(args: dict[str, Any], cart_id: uuid.UUID) -> tuple[dict[str, Any], dict[str, str]]:
        """A cart by its id: an anonymous cart to anyone holding the id, a customer's cart
        to that customer only."""
        customer_id = caller()
        with reading(read_side, "carts", args) as (conn, found):
            view = CartView(redis, conn, ttl, quote_cart)
            document = view.stored(found.generation, str(cart_id))
            owner = None if document is None else document["customer_id"]
            if document is None or document["merged_into"] or owner not in (None, customer_id):
                if found.described["stale"]:
                    reject(
                        503,
                        "The read model has not applied your write yet; try again shortly.",
                        code="not_visible_yet",
                        headers={**found.headers, "Retry-After": str(RETRY_NOT_VISIBLE_AFTER)},
                    )
                reject(404, "No such cart.", headers=found.headers)
            shown = view(document, destination=args.get("country", ""))
        return {"cart": shown, "read_model": found.described}, found.headers

    @blp.route("/api/cart", methods=["GET"])
    @customer_only
    @blp.arguments(CartArgsSchema(), location="query")
    @blp.response(200, CartViewSchema, headers=LAG_HEADERS)
    def my_cart(args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """The signed-in customer's own cart (empty until something is put in it)."""
        cart_id = customer_cart_id(auth.customer())
        with reading(read_side, "carts", args) as (conn, found):
            view = CartView(redis, conn, ttl, quote_cart)
            document = view.stored(found.generation, cart_id) or carts.empty(cart_id)
            shown = view(document, destination=args.get("country", ""))
        return {"cart": shown, "read_model": found.described}, found.headers

    return blp
