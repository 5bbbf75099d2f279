# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""Admin HTTP endpoints of the pricing context: tax rates, list prices, promotions and
coupons. Changes go through commands (recorded with the admin as the actor); lists read
the checkout's lookup tables through pricing.queries, written in those commands'
transactions."""

from __future__ import annotations

import re
from typing import Any

from flask.views import MethodView
from sqlalchemy import Engine

from kernel.auth import Authenticator
from kernel.codec import to_data
from kernel.command_bus import CommandBus
from kernel.http import (
    ADMIN_ONLY,
    OPERATOR_ONLY,
    BearerAuth,
    Blueprint,
    Commands,
    command_metadata,
    documented_problem,
    guarded,
    reject,
)
from kernel.messages import Command, new_id, utc_now
from kernel.money import Money
from pricing import queries
from pricing.commands import (
    CreateCoupon,
    CreatePromotion,
    DisableCoupon,
    EndPromotion,
    RemoveListPrice,
    RemoveTaxRate,
    SetListPrice,
    SetTaxRate,
)
from pricing.schemas import (
    SKU_PATTERN,
    CouponListSchema,
    ListPriceInSchema,
    ListPriceListSchema,
    NewCouponSchema,
    NewPromotionSchema,
    PricingAcceptedSchema,
    PromotionListSchema,
    TaxRateInSchema,
    TaxRateListSchema,
)

PREFIX = "/admin/api/pricing"
PATHS = {  # what a path part must look like, and the message when it does not
    "country": (re.compile(r"[A-Z]{2}"), "Must be an ISO 3166-1 alpha-2 code, e.g. DE."),
    "currency": (re.compile(r"[A-Z]{3}"), "Use an ISO 4217 code such as EUR."),
    "sku": (re.compile(SKU_PATTERN), "2-32 uppercase letters, digits or dashes."),
}
STATUSES = {
    "currency_mismatch": 422,
    "list_price_unknown": 404,
    "tax_rate_unknown": 404,
    "promotion_exists": 409,
    "coupon_exists": 409,
}


def blueprint(bus: CommandBus, authenticator: Authenticator, engine: Engine) -> Blueprint:
    """The pricing admin endpoints, dispatching through `bus`, listing from `engine`."""
    description = "Tax rates, list prices, promotions and coupons (admin only)"
    blp = Blueprint("pricing", __name__, description=description)
    auth, commands = BearerAuth(authenticator), Commands(bus)
    admin_only = guarded(blp, auth.admin, ADMIN_ONLY, unauthorized="No valid bearer token")
    operator_only = guarded(blp, auth.operator, OPERATOR_ONLY, unauthorized="No valid bearer token")
    invalid = documented_problem(blp, 422, "Invalid fields; `errors` lists the messages per field")

    def checked(**parts: str) -> None:
        """Refuse path parts of the wrong shape as a field error, as bodies are."""
        errors = {
            name: [PATHS[name][1]]
            for name, value in parts.items()
            if not PATHS[name][0].fullmatch(value)
        }
        if errors:
            reject(422, "The path is not valid.", errors={"path": errors})

    def accept(command: Command) -> dict[str, str]:
        result = commands.dispatch(command, command_metadata(auth.operator().actor), STATUSES)
        return {"id": result.aggregate_id, "consistency_token": result.consistency_token}

    @blp.route(f"{PREFIX}/tax-rates")
    class TaxRates(MethodView):
        @admin_only
        @blp.response(200, TaxRateListSchema)
        def get(self) -> dict[str, Any]:
            """Every destination's tax rate (a country not listed is untaxed)."""
            with engine.connect() as conn:
                return {"items": [to_data(rate) for rate in queries.tax_rates(conn)]}

    @blp.route(f"{PREFIX}/tax-rates/<string:country>")
    class TaxRate(MethodView):
        @operator_only
        @blp.arguments(TaxRateInSchema())
        @blp.response(202, PricingAcceptedSchema)
        @invalid
        def put(self, body: dict[str, Any], country: str) -> dict[str, str]:
            """Set the tax rate of orders shipping to the country."""
            checked(country=country)
            return accept(SetTaxRate(country, body["rate_bp"], body["prices_include_tax"]))

        @operator_only
        @blp.response(202, PricingAcceptedSchema)
        @invalid
        @documented_problem(blp, 404, "The country has no tax rate")
        def delete(self, country: str) -> dict[str, str]:
            """Remove the country's rate: its orders go untaxed."""
            checked(country=country)
            return accept(RemoveTaxRate(country))

    @blp.route(f"{PREFIX}/list-prices")
    class ListPrices(MethodView):
        @admin_only
        @blp.response(200, ListPriceListSchema)
        def get(self) -> dict[str, Any]:
            """Every SKU's price in a currency other than its base price's."""
            with engine.connect() as conn:
                prices = queries.list_prices(conn)
            return {"items": [{"sku": p.sku, "price": to_data(p.price)} for p in prices]}

    @blp.route(f"{PREFIX}/list-prices/<string:currency>/<string:sku>")
    class ListPrice(MethodView):
        @operator_only
        @blp.arguments(ListPriceInSchema())
        @blp.response(202, PricingAcceptedSchema)
        @invalid
        def put(self, body: dict[str, Any], currency: str, sku: str) -> dict[str, str]:
            """Sell the SKU at this price in the currency."""
            checked(currency=currency, sku=sku)
            return accept(SetListPrice(currency, sku, Money(body["amount"], currency)))

        @operator_only
        @blp.response(202, PricingAcceptedSchema)
        @invalid
        @documented_problem(blp, 404, "The SKU has no list price in the currency")
        def delete(self, currency: str, sku: str) -> dict[str, str]:
            """Remove the SKU's list price in the currency."""
            checked(currency=currency, sku=sku)
            return accept(RemoveListPrice(currency, sku))

    @blp.route(f"{PREFIX}/promotions")
    class Promotions(MethodView):
        @admin_only
        @blp.response(200, PromotionListSchema)
        def get(self) -> dict[str, Any]:
            """Every promotion, the latest to start first."""
            with engine.connect() as conn:
                listed = queries.promotions(conn)
            return {"items": [to_data(p.terms) | {"ended": p.ended} for p in listed]}

        @operator_only
        @blp.arguments(NewPromotionSchema())
        @blp.response(202, PricingAcceptedSchema)
        @invalid
        def post(self, body: dict[str, Any]) -> dict[str, str]:
            """Start a promotion: on the SKUs listed (at most the best one per line), or on
            the order (at most the best one per order, before the coupon)."""
            return accept(
                CreatePromotion(
                    promotion_id=new_id(),
                    description=body["description"],
                    starts_at=body.get("starts_at") or utc_now(),
                    ends_at=body.get("ends_at"),
                    percent_bp=body.get("percent_bp", 0),
                    amount_off=body.get("amount_off"),
                    skus=tuple(body["skus"]),
                )
            )

    @blp.route(f"{PREFIX}/promotions/<string:promotion_id>/end")
    class EndingPromotion(MethodView):
        @operator_only
        @blp.response(202, PricingAcceptedSchema)
        @documented_problem(blp, 404, "No such promotion")
        def post(self, promotion_id: str) -> dict[str, str]:
            """End a promotion now (ending an ended one changes nothing)."""
            return accept(EndPromotion(promotion_id))

    @blp.route(f"{PREFIX}/coupons")
    class Coupons(MethodView):
        @admin_only
        @blp.response(200, CouponListSchema)
        def get(self) -> dict[str, Any]:
            """Every coupon with the number of orders holding a use of it."""
            with engine.connect() as conn:
                listed = queries.coupons(conn)
            return {
                "items": [
                    to_data(c.terms) | {"disabled": c.disabled, "redemptions": c.redemptions}
                    for c in listed
                ]
            }

        @operator_only
        @blp.arguments(NewCouponSchema())
        @blp.response(202, PricingAcceptedSchema)
        @invalid
        @documented_problem(blp, 409, "A coupon with this code exists already")
        def post(self, body: dict[str, Any]) -> dict[str, str]:
            """Create a coupon for a discount on the order, after product promotions."""
            return accept(
                CreateCoupon(
                    code=body["code"],
                    description=body["description"],
                    usage_limit=body["usage_limit"],
                    percent_bp=body.get("percent_bp", 0),
                    amount_off=body.get("amount_off"),
                    starts_at=body.get("starts_at"),
                    ends_at=body.get("ends_at"),
                    min_subtotal=body.get("min_subtotal"),
                )
            )

    @blp.route(f"{PREFIX}/coupons/<string:code>/disable")
    class DisablingCoupon(MethodView):
        @operator_only
        @blp.response(202, PricingAcceptedSchema)
        @documented_problem(blp, 404, "No coupon has this code")
        def post(self, code: str) -> dict[str, str]:
            """Disable a coupon: orders can no longer use it."""
            return accept(DisableCoupon(code))

    return blp
