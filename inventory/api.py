# mypy: disable-error-code="untyped-decorator"
# flask-smorest ships no type hints, so every decorator of a view is untyped.
"""Admin HTTP endpoints for the catalog: add products, restock, change prices."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from inventory.commands import AddProduct, ChangePrice, RestockProduct
from inventory.schemas import NewProductSchema, PriceSchema, ProductAcceptedSchema, RestockSchema
from kernel.http import PROBLEM_JSON, ProblemSchema, command_metadata, dispatch, require_admin
from kernel.money import Money

blueprint = Blueprint("inventory", __name__, description="Products and stock (admin only)")

ADMIN: list[dict[str, list[str]]] = [{"bearer": []}]


def problem(status: int, description: str) -> Callable[[Any], Any]:
    decorate: Callable[[Any], Any] = blueprint.alt_response(
        status, schema=ProblemSchema, content_type=PROBLEM_JSON, description=description
    )
    return decorate


unauthorized = problem(401, "No valid bearer token")
forbidden = problem(403, "Not the admin token")
invalid = problem(422, "Invalid fields; `errors` lists the messages per field")
unknown_sku = problem(404, "No product has this SKU")


@blueprint.before_request
def admins_only() -> None:
    # Before argument parsing, so an anonymous caller learns nothing about the body.
    require_admin()


@blueprint.route("/admin/api/products")
class Products(MethodView):
    @blueprint.doc(security=ADMIN)
    @blueprint.arguments(NewProductSchema)
    @blueprint.response(202, ProductAcceptedSchema)
    @unauthorized
    @forbidden
    @invalid
    @problem(409, "A product with this SKU exists already")
    def post(self, body: dict[str, Any]) -> dict[str, str]:
        """Add a product with its price and initial stock."""
        price = Money(body["price"]["amount"], body["price"]["currency"])
        return _accept(AddProduct(body["sku"], body["name"], price, body["stock"]))


@blueprint.route("/admin/api/products/<string:sku>/restock")
class Restock(MethodView):
    @blueprint.doc(security=ADMIN)
    @blueprint.arguments(RestockSchema)
    @blueprint.response(202, ProductAcceptedSchema)
    @unauthorized
    @forbidden
    @invalid
    @unknown_sku
    def post(self, body: dict[str, Any], sku: str) -> dict[str, str]:
        """Add stock to a product."""
        return _accept(RestockProduct(sku, body["quantity"]))


@blueprint.route("/admin/api/products/<string:sku>/price")
class Price(MethodView):
    @blueprint.doc(security=ADMIN)
    @blueprint.arguments(PriceSchema)
    @blueprint.response(202, ProductAcceptedSchema)
    @unauthorized
    @forbidden
    @invalid
    @unknown_sku
    @problem(409, "The price is in another currency than the product's")
    def post(self, body: dict[str, Any], sku: str) -> dict[str, str]:
        """Change a product's price (same currency)."""
        return _accept(ChangePrice(sku, Money(body["amount"], body["currency"])))


def _accept(command: AddProduct | RestockProduct | ChangePrice) -> dict[str, str]:
    result = dispatch(command, command_metadata(require_admin().actor))
    return {"sku": result.aggregate_id, "consistency_token": result.consistency_token}
