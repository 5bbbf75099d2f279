# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""HTTP endpoints of the orders context: each turns a request into one command. (Customer
accounts and sessions are orders.accounts_api's.)"""

from __future__ import annotations

import uuid
from math import ceil
from typing import Any

from kernel.auth import Authenticator
from kernel.command_bus import CommandBus
from kernel.http import (
    OPERATOR_ONLY,
    BearerAuth,
    Blueprint,
    Commands,
    command_metadata,
    documented_problem,
    guarded,
)
from kernel.messages import new_id
from orders.commands import (
    CancelOrder,
    ForgetCustomer,
    InspectReturn,
    PlaceOrder,
    ReceiveReturn,
    RequestReturn,
    ShipOrder,
    ShipOrderLines,
)
from orders.events import CancelledBy
from orders.schemas import (
    CancelOrderSchema,
    CustomerForgottenSchema,
    IdempotencyKeySchema,
    InspectReturnSchema,
    OrderAcceptedSchema,
    PendingOrderSchema,
    PlaceOrderSchema,
    RequestReturnSchema,
    ReturnAcceptedSchema,
    ReturnIdempotencyKeySchema,
    ShipmentAcceptedSchema,
    ShipOrderLinesSchema,
    ShipOrderSchema,
)

IDEMPOTENCY_IDS = uuid.UUID("0b5c1d52-8a3e-4f0c-b7d4-2f6e9c1a7e43")
LOCATION = {"Location": {"description": "Where to read the order", "schema": {"type": "string"}}}
PRICING_FAILURES = {
    "unknown_sku": 422,
    "mixed_currency": 422,
    "duplicate_sku": 422,
    "order_too_large": 422,
    "not_sold_in_currency": 422,
    "coupon_unknown": 422,
    "coupon_expired": 422,
    "coupon_not_started": 422,
    "coupon_disabled": 422,
    "coupon_not_applicable": 422,
    "coupon_exhausted": 409,
}
HOLD_CAPS = ("too_many_pending_orders", "too_many_reserved_units")
LINE_FAILURES = {"unknown_sku": 422, "duplicate_sku": 422}  # the lines name what cannot be
UNAUTHORIZED = "Missing, forged, expired or revoked bearer token"
RETURN_REFUSED = (
    "More units than were shipped and are in no other return (exceeds_returnable), or"
    " another return under this Idempotency-Key (return_conflict)"
)
RETURN_INVALID = (
    "Invalid fields, a SKU not on the order (unknown_sku) or named twice, or a reused"
    " Idempotency-Key"
)


def blueprint(
    bus: CommandBus, authenticator: Authenticator, *, holds_last: float = 60
) -> Blueprint:
    """The orders endpoints, dispatching through `bus`, callers checked by `authenticator`;
    `holds_last` is how long an order awaiting payment may hold stock (the Retry-After of
    a placement refused by a cap on holds)."""
    blp = Blueprint("orders", __name__, description="Customers placing and cancelling orders")
    auth, commands = BearerAuth(authenticator), Commands(bus)
    customer_only = guarded(
        blp, auth.customer, "The admin token cannot act as a customer", unauthorized=UNAUTHORIZED
    )
    operator_only = guarded(blp, auth.operator, OPERATOR_ONLY, unauthorized=UNAUTHORIZED)

    @blp.route("/api/orders", methods=["POST"])
    @customer_only
    @blp.arguments(PlaceOrderSchema())
    @blp.arguments(IdempotencyKeySchema(), location="headers")
    @blp.response(202, PendingOrderSchema, headers=LOCATION)
    @documented_problem(blp, 404, "The customer does not exist")
    @documented_problem(
        blp,
        422,
        "Invalid fields, an unknown SKU, mixed currencies, more units than MAX_RESERVED_UNITS,"
        " a reused Idempotency-Key, or a coupon that is unknown (coupon_unknown), not valid"
        " now (coupon_expired, coupon_not_started, coupon_disabled) or not for this order"
        " (coupon_not_applicable)",
    )
    @documented_problem(blp, 409, "The coupon was used as often as it may be (coupon_exhausted)")
    @documented_problem(
        blp,
        429,
        "Too many orders awaiting payment (too_many_pending_orders) or units they hold"
        " (too_many_reserved_units) for this customer, or too many placements a minute;"
        " see Retry-After",
    )
    def place_order(body: dict[str, Any], headers: dict[str, str]) -> tuple[dict[str, str], Any]:
        """Place an order; payment and stock are settled asynchronously."""
        customer_id = auth.customer()
        key = headers.get("key")
        order_id, command_id = _ids(customer_id, key) if key else (new_id(), None)
        command = PlaceOrder(
            order_id=order_id,
            customer_id=customer_id,
            lines=tuple(body["lines"]),
            shipping_address=body["shipping_address"],
            payment_token=body["payment"]["token"],
            billing_address=body["billing_address"],
            coupon_code=body["coupon_code"],
        )
        metadata = command_metadata(f"customer:{customer_id}", command_id)
        accepted = commands.dispatch(
            command,
            metadata,
            # A forgotten customer is no customer any more (their tokens end with them).
            statuses=PRICING_FAILURES | dict.fromkeys(HOLD_CAPS, 429) | {"forgotten": 404},
            headers={code: {"Retry-After": str(ceil(holds_last))} for code in HOLD_CAPS},
        )
        placed = {
            "order_id": order_id,
            "status": "pending",
            "consistency_token": accepted.consistency_token,
        }
        return placed, {"Location": f"/api/orders/{order_id}"}

    @blp.route("/api/orders/<uuid:order_id>/cancel", methods=["POST"])
    @customer_only
    @blp.arguments(CancelOrderSchema())
    @blp.response(202, OrderAcceptedSchema)
    @documented_problem(blp, 404, "No such order among the customer's orders")
    @documented_problem(blp, 409, "The order can no longer be cancelled (e.g. it has shipped)")
    def cancel_order(body: dict[str, str], order_id: uuid.UUID) -> dict[str, str]:
        """Cancel one of the customer's own orders."""
        customer_id = auth.customer()
        command = CancelOrder(str(order_id), body["reason"], CancelledBy.CUSTOMER, customer_id)
        accepted = commands.dispatch(command, command_metadata(f"customer:{customer_id}"))
        return {"order_id": str(order_id), "consistency_token": accepted.consistency_token}

    @blp.route("/admin/api/orders/<uuid:order_id>/cancel", methods=["POST"])
    @operator_only
    @blp.arguments(CancelOrderSchema())
    @blp.response(202, OrderAcceptedSchema)
    @documented_problem(blp, 404, "No such order")
    @documented_problem(
        blp, 409, "The order can no longer be cancelled (order_not_cancellable: it has shipped)"
    )
    def cancel_any_order(body: dict[str, str], order_id: uuid.UUID) -> dict[str, str]:
        """Cancel any order as the admin (recorded as the actor); cancelling a cancelled
        order changes nothing. The fulfillment saga then puts its stock back and refunds a
        payment taken, or stops one under way."""
        command = CancelOrder(str(order_id), body["reason"], CancelledBy.ADMIN)
        accepted = commands.dispatch(command, command_metadata(auth.operator().actor))
        return {"order_id": str(order_id), "consistency_token": accepted.consistency_token}

    @blp.route("/admin/api/orders/<uuid:order_id>/ship", methods=["POST"])
    @operator_only
    @blp.arguments(ShipOrderSchema())
    @blp.response(202, OrderAcceptedSchema)
    @documented_problem(blp, 404, "No such order")
    @documented_problem(
        blp, 409, "The order is not confirmed (yet), was cancelled or refunded, or has shipped"
    )
    def ship_order(body: dict[str, str], order_id: uuid.UUID) -> dict[str, str]:
        """Hand a confirmed order to the carrier: all it still holds, as one shipment (what
        `/shipments` shipped of it before stays shipped)."""
        command = ShipOrder(str(order_id), body["tracking_number"])
        accepted = commands.dispatch(command, command_metadata(auth.operator().actor))
        return {"order_id": str(order_id), "consistency_token": accepted.consistency_token}

    @blp.route("/admin/api/orders/<uuid:order_id>/shipments", methods=["POST"])
    @operator_only
    @blp.arguments(ShipOrderLinesSchema())
    @blp.response(202, ShipmentAcceptedSchema)
    @documented_problem(blp, 404, "No such order")
    @documented_problem(
        blp,
        409,
        "The order is not confirmed (yet), was cancelled, refunded or shipped"
        " (order_not_shippable); more units than are left to ship (exceeds_unshipped); or"
        " another shipment under this shipment_id (shipment_conflict)",
    )
    @documented_problem(
        blp, 422, "Invalid fields, a SKU not on the order (unknown_sku) or named twice"
    )
    def ship_order_lines(body: dict[str, Any], order_id: uuid.UUID) -> dict[str, str]:
        """Hand some units of a confirmed order to the carrier, as one shipment (the
        shipment of the last units ships the order). The fulfillment saga then commits
        their reserved stock."""
        shipment_id = body.get("shipment_id") or new_id()
        command = ShipOrderLines(
            str(order_id), shipment_id, tuple(body["lines"]), body["tracking_number"]
        )
        accepted = commands.dispatch(
            command, command_metadata(auth.operator().actor), LINE_FAILURES
        )
        return {
            "order_id": str(order_id),
            "shipment_id": shipment_id,
            "consistency_token": accepted.consistency_token,
        }

    @blp.route("/api/orders/<uuid:order_id>/returns", methods=["POST"])
    @customer_only
    @blp.arguments(RequestReturnSchema())
    @blp.arguments(ReturnIdempotencyKeySchema(), location="headers")
    @blp.response(202, ReturnAcceptedSchema)
    @documented_problem(blp, 404, "No such order among the customer's orders")
    @documented_problem(blp, 409, RETURN_REFUSED)
    @documented_problem(blp, 422, RETURN_INVALID)
    def request_return(
        body: dict[str, Any], headers: dict[str, str], order_id: uuid.UUID
    ) -> dict[str, str]:
        """Announce shipped units of one of the customer's own orders coming back. Once
        the warehouse received and inspected them, the accepted units are refunded what
        they were charged (shipping is not refunded)."""
        customer_id = auth.customer()
        return _request_return(body, headers, order_id, customer_id, f"customer:{customer_id}")

    @blp.route("/admin/api/orders/<uuid:order_id>/returns", methods=["POST"])
    @operator_only
    @blp.arguments(RequestReturnSchema())
    @blp.arguments(ReturnIdempotencyKeySchema(), location="headers")
    @blp.response(202, ReturnAcceptedSchema)
    @documented_problem(blp, 404, "No such order")
    @documented_problem(blp, 409, RETURN_REFUSED)
    @documented_problem(blp, 422, RETURN_INVALID)
    def request_any_return(
        body: dict[str, Any], headers: dict[str, str], order_id: uuid.UUID
    ) -> dict[str, str]:
        """Announce shipped units of any order coming back, for its customer (the admin
        recorded as the actor)."""
        return _request_return(body, headers, order_id, None, auth.operator().actor)

    def _request_return(
        body: dict[str, Any],
        headers: dict[str, str],
        order_id: uuid.UUID,
        customer_id: str | None,
        actor: str,
    ) -> dict[str, str]:
        key = headers.get("key")
        asker = customer_id or "operator"
        return_id, command_id = _return_ids(asker, str(order_id), key) if key else (new_id(), None)
        command = RequestReturn(
            str(order_id), return_id, tuple(body["lines"]), body["reason"], customer_id
        )
        accepted = commands.dispatch(command, command_metadata(actor, command_id), LINE_FAILURES)
        return {
            "order_id": str(order_id),
            "return_id": return_id,
            "consistency_token": accepted.consistency_token,
        }

    @blp.route(
        "/admin/api/orders/<uuid:order_id>/returns/<uuid:return_id>/receive", methods=["POST"]
    )
    @operator_only
    @blp.response(202, ReturnAcceptedSchema)
    @documented_problem(blp, 404, "No such order, or no such return of it")
    def receive_return(order_id: uuid.UUID, return_id: uuid.UUID) -> dict[str, str]:
        """Record that a return's parcel arrived at the warehouse (again: nothing
        changes)."""
        command = ReceiveReturn(str(order_id), str(return_id))
        accepted = commands.dispatch(command, command_metadata(auth.operator().actor))
        return {
            "order_id": str(order_id),
            "return_id": str(return_id),
            "consistency_token": accepted.consistency_token,
        }

    @blp.route(
        "/admin/api/orders/<uuid:order_id>/returns/<uuid:return_id>/inspect", methods=["POST"]
    )
    @operator_only
    @blp.arguments(InspectReturnSchema())
    @blp.response(202, ReturnAcceptedSchema)
    @documented_problem(blp, 404, "No such order, or no such return of it")
    @documented_problem(
        blp,
        409,
        "The return was not received yet (return_not_received), or was inspected with"
        " another outcome (return_conflict)",
    )
    @documented_problem(
        blp,
        422,
        "Invalid fields, a SKU named twice, or more units accepted than the return holds"
        " (exceeds_returned)",
    )
    def inspect_return(
        body: dict[str, Any], order_id: uuid.UUID, return_id: uuid.UUID
    ) -> dict[str, str]:
        """Accept the units of a received return that passed inspection and reject the
        rest. The fulfillment saga then puts the accepted units back on hand and refunds
        what they were charged, discounts and tax included."""
        command = InspectReturn(
            str(order_id), str(return_id), tuple(body["accepted"]), body["note"]
        )
        accepted = commands.dispatch(
            command,
            command_metadata(auth.operator().actor),
            LINE_FAILURES | {"exceeds_returned": 422},
        )
        return {
            "order_id": str(order_id),
            "return_id": str(return_id),
            "consistency_token": accepted.consistency_token,
        }

    @blp.route("/api/me", methods=["DELETE"])
    @customer_only
    @blp.response(202, CustomerForgottenSchema)
    def forget_me() -> dict[str, str]:
        """Erase the caller's personal data and close their account (GDPR art. 17): their
        name, email and addresses read as erased everywhere from now on, and their token
        stops working. Orders stay, without the personal data, for the books."""
        customer_id = auth.customer()
        command = ForgetCustomer(customer_id)
        accepted = commands.dispatch(command, command_metadata(f"customer:{customer_id}"))
        return {"customer_id": customer_id, "consistency_token": accepted.consistency_token}

    @blp.route("/admin/api/customers/<uuid:customer_id>/forget", methods=["POST"])
    @operator_only
    @blp.response(202, CustomerForgottenSchema)
    @documented_problem(blp, 404, "No such customer")
    def forget_customer(customer_id: uuid.UUID) -> dict[str, str]:
        """Erase a customer's personal data (GDPR art. 17), as the admin (recorded as the
        actor); forgetting a forgotten customer changes nothing."""
        command = ForgetCustomer(str(customer_id))
        accepted = commands.dispatch(command, command_metadata(auth.operator().actor))
        return {"customer_id": str(customer_id), "consistency_token": accepted.consistency_token}

    return blp


def _ids(customer_id: str, idempotency_key: str) -> tuple[str, str]:
    """The order id and command id a retry with the same key gets again."""
    scope = f"{customer_id}\n{idempotency_key}"
    order_id = uuid.uuid5(IDEMPOTENCY_IDS, f"order\n{scope}")
    command_id = uuid.uuid5(IDEMPOTENCY_IDS, f"place-order\n{scope}")
    return str(order_id), str(command_id)


def _return_ids(asker: str, order_id: str, idempotency_key: str) -> tuple[str, str]:
    """The return id and command id a retry with the same key gets again (`asker`: the
    customer's id, or "operator" for every admin)."""
    scope = f"{asker}\n{order_id}\n{idempotency_key}"
    return_id = uuid.uuid5(IDEMPOTENCY_IDS, f"return\n{scope}")
    command_id = uuid.uuid5(IDEMPOTENCY_IDS, f"request-return\n{scope}")
    return str(return_id), str(command_id)
