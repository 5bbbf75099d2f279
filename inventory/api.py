# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""Admin HTTP endpoints for the catalog: add products, restock, change prices."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from inventory.commands import AddProduct, ChangePrice, RestockProduct
from inventory.schemas import NewProductSchema, PriceSchema, ProductAcceptedSchema, RestockSchema
from kernel.http import command_metadata, dispatch, documented_problem, guarded, require_admin
from kernel.money import Money

blueprint = Blueprint("inventory", __name__, description="Products and stock (admin only)")

# Every endpoint here is for the admin; the check runs before the body is parsed.
admin_only = guarded(
    blueprint, require_admin, "Not the admin token", unauthorized="No valid bearer token"
)
invalid = documented_problem(
    blueprint, 422, "Invalid fields; `errors` lists the messages per field"
)
unknown_sku = documented_problem(blueprint, 404, "No product has this SKU")


@blueprint.route("/admin/api/products")
class Products(MethodView):
    @admin_only
    @blueprint.arguments(NewProductSchema())
    @blueprint.response(202, ProductAcceptedSchema)
    @invalid
    @documented_problem(blueprint, 409, "A product with this SKU exists already")
    def post(self, body: dict[str, Any]) -> dict[str, str]:
        """Add a product with its price and initial stock."""
        price = Money(body["price"]["amount"], body["price"]["currency"])
        return _accept(AddProduct(body["sku"], body["name"], price, body["stock"]))


@blueprint.route("/admin/api/products/<string:sku>/restock")
class Restock(MethodView):
    @admin_only
    @blueprint.arguments(RestockSchema())
    @blueprint.response(202, ProductAcceptedSchema)
    @invalid
    @unknown_sku
    def post(self, body: dict[str, Any], sku: str) -> dict[str, str]:
        """Add stock to a product."""
        return _accept(RestockProduct(sku, body["quantity"]))


@blueprint.route("/admin/api/products/<string:sku>/price")
class Price(MethodView):
    @admin_only
    @blueprint.arguments(PriceSchema())
    @blueprint.response(202, ProductAcceptedSchema)
    @invalid
    @unknown_sku
    @documented_problem(blueprint, 409, "The price is in another currency than the product's")
    def post(self, body: dict[str, Any], sku: str) -> dict[str, str]:
        """Change a product's price (same currency)."""
        return _accept(ChangePrice(sku, Money(body["amount"], body["currency"])))


def _accept(command: AddProduct | RestockProduct | ChangePrice) -> dict[str, str]:
    result = dispatch(command, command_metadata(require_admin().actor))
    return {"sku": result.aggregate_id, "consistency_token": result.consistency_token}
