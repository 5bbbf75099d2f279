# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""HTTP endpoints of carts: each turns a request into one command (the cart as it stands is
a query: projections.cart_api).

An anonymous cart's id is its only key, like a bearer secret: anyone sending it may use
the cart, with or without a token. A customer's cart answers only its customer's bearer
token; to anyone else it does not exist (404), as their orders do. A bearer token that is
sent must be valid either way.
"""

from __future__ import annotations

import functools
import uuid
from math import ceil
from typing import Any

from kernel.auth import Authenticator
from kernel.command_bus import CommandBus
from kernel.http import (
    BearerAuth,
    Blueprint,
    Commands,
    View,
    bearer_token,
    command_metadata,
    documented_problem,
    guarded,
)
from kernel.messages import new_id
from orders.api import HOLD_CAPS, IDEMPOTENCY_IDS, PRICING_FAILURES, UNAUTHORIZED
from orders.cart_schemas import (
    AddItemSchema,
    ApplyCouponSchema,
    CartAcceptedSchema,
    ChangeQuantitySchema,
    CheckedOutSchema,
    CheckOutCartSchema,
    MergeCartSchema,
    StartCartSchema,
)
from orders.commands import (
    AddItemToCart,
    ApplyCoupon,
    ChangeCartItemQuantity,
    CheckOutCart,
    MergeCarts,
    RemoveCoupon,
    RemoveItemFromCart,
    StartCart,
    customer_cart_id,
)
from orders.schemas import IdempotencyKeySchema

CART_FAILURES = {
    "unknown_sku": 422,
    "mixed_currency": 422,
    "cart_full": 422,
    "too_many_units": 422,
    "not_in_cart": 404,
}
CHECKOUT_FAILURES = {
    **PRICING_FAILURES,
    "cart_empty": 422,
    "cart_full": 422,
    "too_many_units": 422,
    "forgotten": 404,
    **dict.fromkeys(HOLD_CAPS, 429),
}
CartCommand = (
    StartCart | AddItemToCart | ChangeCartItemQuantity | RemoveItemFromCart | ApplyCoupon
    | RemoveCoupon | MergeCarts
)  # fmt: skip
NO_CART = "No such cart, or not yours (a customer's cart answers only its customer)"
OPTIONAL_TOKEN = "A bearer token was sent and is missing, forged, expired or revoked"


def blueprint(
    bus: CommandBus, authenticator: Authenticator, *, holds_last: float = 60
) -> Blueprint:
    """The cart endpoints, dispatching through `bus`, callers checked by `authenticator`;
    `holds_last` as for placing an order (the Retry-After of a checkout refused by a cap
    on holds)."""
    blp = Blueprint("carts", __name__, description="Shoppers filling carts and checking out")
    auth, commands = BearerAuth(authenticator), Commands(bus)
    customer_only = guarded(
        blp, auth.customer, "The admin token cannot act as a customer", unauthorized=UNAUTHORIZED
    )

    def caller() -> str | None:
        """The calling customer, or None for a caller without a token."""
        return None if bearer_token() is None else auth.customer()

    def anyone(view: View) -> View:
        """Open to anyone holding the cart's id; a token sent is checked first (before the
        body is parsed, as `guarded` does)."""

        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            caller()
            return view(*args, **kwargs)

        documented: View = blp.doc(security=[{}, {"bearer": []}])(checked)
        documented = documented_problem(blp, 401, OPTIONAL_TOKEN)(documented)
        return documented_problem(blp, 403, "The admin token cannot act as a customer")(documented)

    def dispatch(command: CartCommand) -> dict[str, str]:
        customer_id = caller()
        actor = "anonymous" if customer_id is None else f"customer:{customer_id}"
        accepted = commands.dispatch(command, command_metadata(actor), CART_FAILURES)
        return {"cart_id": command.cart_id, "consistency_token": accepted.consistency_token}

    @blp.route("/api/carts", methods=["POST"])
    @anyone
    @blp.arguments(StartCartSchema(), required=False)
    @blp.response(201, CartAcceptedSchema)
    @documented_problem(
        blp,
        422,
        "Invalid fields, an unknown SKU, more than one currency, more than 1000 units of a SKU",
    )
    def start_cart(body: dict[str, Any]) -> dict[str, str]:
        """Start an anonymous cart, with the lines given in it already. Its id is its only
        key: keep it as you would a token (whoever has it can use the cart). Signing in
        with it merges it into your own."""
        return dispatch(StartCart(new_id(), tuple(body.get("lines", ()))))

    @blp.route("/api/carts/<uuid:cart_id>/items", methods=["POST"])
    @anyone
    @blp.arguments(AddItemSchema())
    @blp.response(202, CartAcceptedSchema)
    @documented_problem(blp, 404, NO_CART)
    @documented_problem(
        blp,
        422,
        "Invalid fields, an unknown SKU, another currency than the cart's, more than 50"
        " lines or 1000 units of a SKU",
    )
    def add_item(body: dict[str, Any], cart_id: uuid.UUID) -> dict[str, str]:
        """Add units of a product (a SKU in the cart already adds up), at today's price."""
        return dispatch(AddItemToCart(str(cart_id), body["sku"], body["quantity"], caller()))

    @blp.route("/api/carts/<uuid:cart_id>/items/<string:sku>", methods=["PUT"])
    @anyone
    @blp.arguments(ChangeQuantitySchema())
    @blp.response(202, CartAcceptedSchema)
    @documented_problem(blp, 404, f"{NO_CART}, or the SKU is not in it")
    def change_quantity(body: dict[str, Any], cart_id: uuid.UUID, sku: str) -> dict[str, str]:
        """Set how many units of the SKU the cart holds; 0 removes the line."""
        command = ChangeCartItemQuantity(str(cart_id), sku, body["quantity"], caller())
        return dispatch(command)

    @blp.route("/api/carts/<uuid:cart_id>/items/<string:sku>", methods=["DELETE"])
    @anyone
    @blp.response(202, CartAcceptedSchema)
    @documented_problem(blp, 404, f"{NO_CART}, or the SKU is not in it")
    def remove_item(cart_id: uuid.UUID, sku: str) -> dict[str, str]:
        """Take the SKU out of the cart."""
        return dispatch(RemoveItemFromCart(str(cart_id), sku, caller()))

    @blp.route("/api/carts/<uuid:cart_id>/coupon", methods=["PUT"])
    @anyone
    @blp.arguments(ApplyCouponSchema())
    @blp.response(202, CartAcceptedSchema)
    @documented_problem(blp, 404, NO_CART)
    def apply_coupon(body: dict[str, Any], cart_id: uuid.UUID) -> dict[str, str]:
        """Give the cart a coupon code (one at a time: it replaces any other). Whether it
        applies is decided at checkout (the cart's view shows the quote with it)."""
        return dispatch(ApplyCoupon(str(cart_id), body["code"], caller()))

    @blp.route("/api/carts/<uuid:cart_id>/coupon", methods=["DELETE"])
    @anyone
    @blp.response(202, CartAcceptedSchema)
    @documented_problem(blp, 404, NO_CART)
    def remove_coupon(cart_id: uuid.UUID) -> dict[str, str]:
        """Take the coupon off the cart."""
        return dispatch(RemoveCoupon(str(cart_id), caller()))

    @blp.route("/api/cart/merge", methods=["POST"])
    @customer_only
    @blp.arguments(MergeCartSchema())
    @blp.response(202, CartAcceptedSchema)
    @documented_problem(blp, 404, "No such anonymous cart (or it was merged elsewhere)")
    @documented_problem(
        blp, 422, "Invalid fields, or together the carts would pass 50 lines or 1000 units"
    )
    def merge_cart(body: dict[str, Any]) -> dict[str, str]:
        """Merge an anonymous cart into yours (for clients that sign in first): its lines
        add up with yours, its coupon comes along if yours has none, and it is closed."""
        customer_id = auth.customer()
        own = customer_cart_id(customer_id)
        return dispatch(MergeCarts(own, str(body["cart_id"]), customer_id))

    @blp.route("/api/carts/<uuid:cart_id>/checkout", methods=["POST"])
    @customer_only
    @blp.arguments(CheckOutCartSchema())
    @blp.arguments(IdempotencyKeySchema(), location="headers")
    @blp.response(202, CheckedOutSchema)
    @documented_problem(blp, 404, NO_CART)
    @documented_problem(
        blp,
        422,
        "Invalid fields, an empty cart, an unknown SKU, a coupon that does not apply, more"
        " units than MAX_RESERVED_UNITS or a reused Idempotency-Key",
    )
    @documented_problem(blp, 409, "The cart's coupon has no uses left (coupon_exhausted)")
    @documented_problem(
        blp,
        429,
        "Too many orders awaiting payment or units they hold for this customer, or too many"
        " placements a minute; see Retry-After",
    )
    def check_out(
        body: dict[str, Any], headers: dict[str, str], cart_id: uuid.UUID
    ) -> dict[str, str]:
        """Place the cart as an order, priced now, in one step: the order is placed if and
        only if the cart is emptied. Your own cart, or an anonymous one: that is merged
        into yours first, in the same step (a refused checkout leaves both as they were).
        Payment and stock are settled asynchronously, as for POST /api/orders."""
        customer_id = auth.customer()
        own = customer_cart_id(customer_id)
        key = headers.get("key")
        order_id, command_id = _ids(customer_id, key) if key else (new_id(), None)
        command = CheckOutCart(
            cart_id=own,
            order_id=order_id,
            customer_id=customer_id,
            shipping_address=body["shipping_address"],
            payment_token=body["payment"]["token"],
            billing_address=body.get("billing_address"),
            merge_from=None if str(cart_id) == own else str(cart_id),
        )
        accepted = commands.dispatch(
            command,
            command_metadata(f"customer:{customer_id}", command_id),
            CHECKOUT_FAILURES,
            headers={code: {"Retry-After": str(ceil(holds_last))} for code in HOLD_CAPS},
        )
        return {
            "order_id": order_id,
            "cart_id": own,
            "status": "pending",
            "consistency_token": accepted.consistency_token,
        }

    return blp


def _ids(customer_id: str, idempotency_key: str) -> tuple[str, str]:
    """The order id and command id a retry with the same key gets again (never those of
    POST /api/orders with the same key: another scope)."""
    scope = f"{customer_id}\n{idempotency_key}"
    order_id = uuid.uuid5(IDEMPOTENCY_IDS, f"cart-order\n{scope}")
    command_id = uuid.uuid5(IDEMPOTENCY_IDS, f"check-out-cart\n{scope}")
    return str(order_id), str(command_id)
