# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""Admin HTTP endpoints for the catalog: add products, restock, change prices."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from inventory.commands import AddProduct, ChangePrice, RestockProduct
from inventory.schemas import NewProductSchema, PriceSchema, ProductAcceptedSchema, RestockSchema
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
from kernel.money import Money


def blueprint(bus: CommandBus, authenticator: Authenticator) -> Blueprint:
    """The catalog's admin endpoints, dispatching through `bus`."""
    blp = Blueprint("inventory", __name__, description="Products and stock (admin only)")
    auth, commands = BearerAuth(authenticator), Commands(bus)
    # Every endpoint here changes the catalog; the check runs before the body is parsed.
    operator_only = guarded(blp, auth.operator, OPERATOR_ONLY, unauthorized="No valid bearer token")
    invalid = documented_problem(blp, 422, "Invalid fields; `errors` lists the messages per field")
    unknown_sku = documented_problem(blp, 404, "No product has this SKU")

    def accept(command: AddProduct | RestockProduct | ChangePrice) -> dict[str, str]:
        result = commands.dispatch(command, command_metadata(auth.operator().actor))
        return {"sku": result.aggregate_id, "consistency_token": result.consistency_token}

    @blp.route("/admin/api/products")
    class Products(MethodView):
        @operator_only
        @blp.arguments(NewProductSchema())
        @blp.response(202, ProductAcceptedSchema)
        @invalid
        @documented_problem(blp, 409, "A product with this SKU exists already")
        def post(self, body: dict[str, Any]) -> dict[str, str]:
            """Add a product with its price and initial stock."""
            price = Money(body["price"]["amount"], body["price"]["currency"])
            return accept(AddProduct(body["sku"], body["name"], price, body["stock"]))

    @blp.route("/admin/api/products/<string:sku>/restock")
    class Restock(MethodView):
        @operator_only
        @blp.arguments(RestockSchema())
        @blp.response(202, ProductAcceptedSchema)
        @invalid
        @unknown_sku
        def post(self, body: dict[str, Any], sku: str) -> dict[str, str]:
            """Add stock to a product."""
            return accept(RestockProduct(sku, body["quantity"]))

    @blp.route("/admin/api/products/<string:sku>/price")
    class Price(MethodView):
        @operator_only
        @blp.arguments(PriceSchema())
        @blp.response(202, ProductAcceptedSchema)
        @invalid
        @unknown_sku
        @documented_problem(blp, 409, "The price is in another currency than the product's")
        def post(self, body: dict[str, Any], sku: str) -> dict[str, str]:
            """Change a product's price (same currency)."""
            return accept(ChangePrice(sku, Money(body["amount"], body["currency"])))

    return blp
