# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""HTTP endpoints of the payments context: translate requests into commands."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from kernel.http import command_metadata, dispatch, documented_problem, guarded, require_admin
from payments.commands import RefundPayment
from payments.schemas import RefundAcceptedSchema, RefundPaymentSchema

blueprint = Blueprint("payments", __name__, description="payments commands")

admin_only = guarded(
    blueprint,
    require_admin,
    "The token is not the admin token",
    unauthorized="No valid bearer token",
)


@blueprint.post("/admin/api/orders/<order_id>/refund")
@admin_only
@blueprint.doc(summary="Refund an order's payment")
@blueprint.arguments(RefundPaymentSchema)
@blueprint.response(202, RefundAcceptedSchema)
@documented_problem(blueprint, 404, "The order has no payment")
@documented_problem(
    blueprint,
    409,
    "The payment is not refundable (payment_not_refundable) or the provider refused",
)
def refund_payment(body: dict[str, Any], order_id: str) -> dict[str, str]:
    """Give the order's payment back to the customer; refunding twice changes nothing."""
    result = dispatch(
        RefundPayment(order_id, body["reason"]), command_metadata(require_admin().actor)
    )
    return {"order_id": order_id, "consistency_token": result.consistency_token}
