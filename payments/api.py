"""HTTP endpoints of the payments context: translate requests into commands."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar, cast

from flask_smorest import Blueprint

from kernel.http import PROBLEM_JSON, ProblemSchema, command_metadata, dispatch, require_admin
from payments.commands import RefundPayment
from payments.schemas import RefundAcceptedSchema, RefundPaymentSchema

blueprint = Blueprint("payments", __name__, description="payments commands")

F = TypeVar("F", bound=Callable[..., Any])
P = ParamSpec("P")
R = TypeVar("R")


def typed(decorator: Any) -> Callable[[F], F]:
    # flask-smorest ships no type hints; its decorators register the view and keep its signature.
    return cast("Callable[[F], F]", decorator)


def problem(status: int, description: str) -> Callable[[F], F]:
    return typed(
        blueprint.alt_response(
            status, schema=ProblemSchema, content_type=PROBLEM_JSON, description=description
        )
    )


def admin_only(view: Callable[P, R]) -> Callable[P, R]:
    # Runs before the body is parsed, so a stranger learns nothing from validation errors.
    @wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        require_admin()
        return view(*args, **kwargs)

    return guarded


@typed(blueprint.post("/admin/api/orders/<order_id>/refund"))
@typed(blueprint.doc(security=[{"bearer": []}], summary="Refund an order's payment"))
@problem(401, "No valid bearer token")
@problem(403, "The token is not the admin token")
@problem(404, "The order has no payment")
@problem(409, "The payment is not refundable (payment_not_refundable) or the provider refused")
@typed(blueprint.response(202, RefundAcceptedSchema))
@admin_only
@typed(blueprint.arguments(RefundPaymentSchema))
def refund_payment(body: dict[str, Any], order_id: str) -> dict[str, str]:
    """Give the order's payment back to the customer; refunding twice changes nothing."""
    result = dispatch(
        RefundPayment(order_id, body["reason"]), command_metadata(require_admin().actor)
    )
    return {"order_id": order_id, "consistency_token": result.consistency_token}
