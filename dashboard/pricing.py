"""Pricing: tax rates, promotions, coupons and list prices, with the operator's actions
on them.

Each page lists the pricing context's rules from its lookup tables through
`pricing.queries` (written in the transactions of the commands that change them, so
never behind the log), and its forms dispatch the pricing context's commands through
the command bus as the acting admin. Setting and creating dispatch at once; removing a
tax rate or a list price, ending a promotion and disabling a coupon take a confirmation
step first, like the order page's destructive actions. Amounts are typed in major units
(12.50) and sent in minor units; percentages are typed as percent (19 or 7.5) and sent
in basis points; times are typed in UTC.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import marshmallow as ma
from flask import Blueprint, Response, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from marshmallow import validate
from sqlalchemy import Connection

from dashboard.auth import acting_admin
from dashboard.common import confirmation, confirmed, field_errors, page
from dashboard.filters import money
from dashboard.services import Services
from kernel.http import command_metadata
from kernel.messages import Command
from kernel.money import MINOR_DIGITS, Money
from kernel.results import Failure
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

STATUS_BY_CODE = {"not_found": 404, "invalid": 422}
FULL_BP = 10_000  # 100 % in basis points
MAX_AMOUNT = Decimal(10**7)  # major units, as the inventory's price form allows
MAX_USES = 10**6
SECTIONS = (
    ("taxes", "Tax rates"),
    ("promotions", "Promotions"),
    ("coupons", "Coupons"),
    ("prices", "List prices"),
)

# --- the forms ------------------------------------------------------------------------


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Must not be blank.")


def _country() -> ma.fields.String:
    return ma.fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z]{2}$", error="Use an ISO 3166 code such as DE."),
    )


def _currency(required: bool = True) -> ma.fields.String:
    return ma.fields.String(
        required=required,
        validate=validate.Regexp(r"^[A-Z]{3}$", error="Use an ISO 4217 code such as EUR."),
    )


def _sku() -> ma.fields.String:
    return ma.fields.String(
        required=True,
        validate=[validate.Length(min=1, max=64), _not_blank],
    )


def _amount(required: bool = True) -> ma.fields.Decimal:
    return ma.fields.Decimal(
        required=required,
        validate=validate.Range(min=0, max=MAX_AMOUNT, max_inclusive=False),
        error_messages={"invalid": "Enter an amount such as 12.50."},
    )


def _percent() -> ma.fields.Decimal:
    return ma.fields.Decimal(
        validate=validate.Range(min=0, max=100, min_inclusive=False),
        error_messages={"invalid": "Enter a percentage such as 19 or 7.5."},
    )


def _time(required: bool = False) -> ma.fields.DateTime:
    """A time as a browser's datetime-local input sends it (`2026-12-24T18:00`), in UTC."""
    return ma.fields.DateTime(
        required=required, error_messages={"invalid": "Enter a time such as 2026-12-24T18:00."}
    )


def _in_cents(data: dict[str, Any], amount: str, currency: str) -> None:
    """An amount has no more decimals than its currency's minor unit."""
    value, code = data.get(amount), data.get(currency)
    if value is None or code is None:
        return
    digits = MINOR_DIGITS.get(code, 2)
    if value != value.quantize(Decimal(1).scaleb(-digits)):
        raise ma.ValidationError(f"At most {digits} decimals in {code}.", amount)


def _in_hundredths(data: dict[str, Any], field: str) -> None:
    value = data.get(field)
    if value is not None and value != value.quantize(Decimal("0.01")):
        raise ma.ValidationError("At most two decimals (a basis point).", field)


class TaxRateForm(ma.Schema):
    country = _country()
    rate = ma.fields.Decimal(
        required=True,
        validate=validate.Range(min=0, max=100),
        error_messages={"invalid": "Enter a percentage such as 19 or 7.5."},
    )
    display = ma.fields.String(
        required=True,
        validate=validate.OneOf(("inclusive", "exclusive"), error="Choose inclusive or exclusive."),
    )

    @ma.validates_schema
    def whole_basis_points(self, data: dict[str, Any], **_: object) -> None:
        _in_hundredths(data, "rate")


class ListPriceForm(ma.Schema):
    sku = _sku()
    currency = _currency()
    amount = _amount()

    @ma.validates_schema
    def in_cents(self, data: dict[str, Any], **_: object) -> None:
        _in_cents(data, "amount", "currency")


class OfferForm(ma.Schema):
    """A discount: `percent` off, or `amount` off in `currency`; one of the two."""

    description = ma.fields.String(
        required=True, validate=[validate.Length(min=1, max=200), _not_blank]
    )
    kind = ma.fields.String(
        required=True,
        validate=validate.OneOf(("percent", "amount"), error="Choose percent or amount."),
    )
    percent = _percent()
    amount = _amount(required=False)
    currency = _currency(required=False)
    starts_at = _time()
    ends_at = _time()

    @ma.validates_schema
    def one_offer(self, data: dict[str, Any], **_: object) -> None:
        if data.get("kind") == "percent":
            if data.get("percent") is None:
                raise ma.ValidationError("Enter the percentage off.", "percent")
            _in_hundredths(data, "percent")
        if data.get("kind") == "amount":
            if data.get("amount") is None or data["amount"] == 0:
                raise ma.ValidationError("Enter the amount off (above 0).", "amount")
            if data.get("currency") is None:
                raise ma.ValidationError("Say which currency the amount is in.", "currency")
            _in_cents(data, "amount", "currency")
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and _utc(ends) <= _utc(starts):
            raise ma.ValidationError("Must be after the start.", "ends_at")


class PromotionForm(OfferForm):
    promotion_id = ma.fields.UUID(required=True)
    scope = ma.fields.String(
        required=True,
        validate=validate.OneOf(("order", "skus"), error="Choose the order or some SKUs."),
    )
    skus = ma.fields.String(validate=validate.Length(max=2000))

    @ma.validates_schema
    def some_skus(self, data: dict[str, Any], **_: object) -> None:
        if data.get("scope") == "skus" and not _skus(data.get("skus", "")):
            raise ma.ValidationError("List the SKUs, separated by commas.", "skus")


class CouponForm(OfferForm):
    code = ma.fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[A-Z0-9][A-Z0-9_-]{2,31}$",
            error="3 to 32 letters, digits, - or _ (it is matched in capitals).",
        ),
    )
    usage_limit = ma.fields.Integer(
        required=True,
        validate=validate.Range(min=1, max=MAX_USES),
        error_messages={"invalid": "Enter a whole number."},
    )
    min_subtotal = _amount(required=False)

    @ma.validates_schema
    def minimum_in_a_currency(self, data: dict[str, Any], **_: object) -> None:
        if data.get("min_subtotal") is not None:
            if data.get("currency") is None:
                raise ma.ValidationError("Say which currency the minimum is in.", "currency")
            _in_cents(data, "min_subtotal", "currency")


def _skus(text: str) -> tuple[str, ...]:
    """`MUG-1, TEE-1` as SKUs, each once, in the order given."""
    return tuple(dict.fromkeys(sku.strip() for sku in text.split(",") if sku.strip()))


def _utc(moment: datetime) -> datetime:
    """A time typed without a zone is UTC (the dashboard shows every time in UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _minor(amount: Decimal, currency: str) -> Money:
    return Money(int(amount.scaleb(MINOR_DIGITS.get(currency, 2))), currency)


def _shown(amount: Decimal, currency: str) -> str:
    return money(_minor(amount, currency).amount, currency)


def _bp(percent: Decimal) -> int:
    return int(percent * 100)


def _offer(form: dict[str, Any]) -> dict[str, Any]:
    """The command's `percent_bp` and `amount_off` from an OfferForm."""
    if form["kind"] == "percent":
        return {"percent_bp": _bp(form["percent"]), "amount_off": None}
    return {"percent_bp": 0, "amount_off": _minor(form["amount"], form["currency"])}


def _tax_rate(form: dict[str, Any]) -> Command:
    return SetTaxRate(form["country"], _bp(form["rate"]), form["display"] == "inclusive")


def _list_price(form: dict[str, Any]) -> Command:
    price = _minor(form["amount"], form["currency"])
    return SetListPrice(form["currency"], form["sku"], price)


def _promotion(form: dict[str, Any]) -> Command:
    skus = _skus(form.get("skus", "")) if form["scope"] == "skus" else ()
    ends_at = form.get("ends_at")
    return CreatePromotion(
        str(form["promotion_id"]),
        form["description"],
        _utc(form.get("starts_at") or datetime.now(UTC)),
        None if ends_at is None else _utc(ends_at),
        skus=skus,
        **_offer(form),
    )


def _coupon(form: dict[str, Any]) -> Command:
    starts_at, ends_at, minimum = form.get("starts_at"), form.get("ends_at"), None
    if form.get("min_subtotal") is not None:
        minimum = _minor(form["min_subtotal"], form["currency"])
    return CreateCoupon(
        form["code"],
        form["description"],
        form["usage_limit"],
        starts_at=None if starts_at is None else _utc(starts_at),
        ends_at=None if ends_at is None else _utc(ends_at),
        min_subtotal=minimum,
        **_offer(form),
    )


@dataclass(frozen=True, slots=True)
class Setting:
    """A form that sets or creates something: its schema, its fields, its command and
    the flash message (formatted with the form's values)."""

    section: str
    schema: Callable[[], ma.Schema]
    fields: tuple[str, ...]
    command: Callable[[dict[str, Any]], Command]
    done: Callable[[dict[str, Any]], str]
    upper: tuple[str, ...] = ()  # typed in any case, matched in capitals


SETTINGS = {
    "taxes": Setting(
        "taxes", TaxRateForm, ("country", "rate", "display"), _tax_rate,
        lambda f: f"{f['country']} is taxed at {f['rate']} % ({f['display']} prices).",
        upper=("country",),
    ),
    "prices": Setting(
        "prices", ListPriceForm, ("sku", "currency", "amount"), _list_price,
        lambda f: f"{f['sku']} now sells at {_shown(f['amount'], f['currency'])}.",
        upper=("currency",),
    ),
    "promotions": Setting(
        "promotions", PromotionForm,
        ("promotion_id", "description", "kind", "percent", "amount", "currency", "scope",
         "skus", "starts_at", "ends_at"),
        _promotion, lambda f: f"Promotion \u201c{f['description']}\u201d created.",
        upper=("currency",),
    ),
    "coupons": Setting(
        "coupons", CouponForm,
        ("code", "description", "kind", "percent", "amount", "currency", "usage_limit",
         "min_subtotal", "starts_at", "ends_at"),
        _coupon, lambda f: f"Coupon {f['code']} created.", upper=("code", "currency"),
    ),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Removal:
    """An action that takes something away, after a confirmation step."""

    section: str
    command: Callable[..., Command]
    title: str  # formatted with the URL's values
    consequence: str
    button: str
    done: str  # formatted with the URL's values


REMOVALS = {
    "remove_tax_rate": Removal(
        "taxes", RemoveTaxRate, "Remove the tax rate of {country}?",
        "Orders shipping there go untaxed from now on; orders placed keep their tax.",
        "Yes, remove it", "{country} has no tax rate now.",
    ),
    "remove_list_price": Removal(
        "prices", RemoveListPrice, "Remove the {currency} price of {sku}?",
        "It sells at its base price in that currency from now on; orders placed keep theirs.",
        "Yes, remove it", "{sku} has no {currency} list price now.",
    ),
    "end_promotion": Removal(
        "promotions", EndPromotion, "End promotion {name}?",
        "It stops applying to new orders at once, for good; orders placed keep their discount.",
        "Yes, end it", "Promotion {name} ended.",
    ),
    "disable_coupon": Removal(
        "coupons", DisableCoupon, "Disable coupon {code}?",
        "Customers can no longer use it, for good; orders placed with it keep their discount.",
        "Yes, disable it", "Coupon {code} disabled.",
    ),
}  # fmt: skip


# --- what the pages show --------------------------------------------------------------


def promotion_status(starts_at: str, ends_at: str | None, ended: bool, now: datetime) -> str:
    """`scheduled` before it starts, `running` until it ends, then `ended`."""
    if ended or (ends_at is not None and datetime.fromisoformat(ends_at) <= now):
        return "ended"
    return "scheduled" if datetime.fromisoformat(starts_at) > now else "running"


def coupon_validity(
    starts_at: str | None,
    ends_at: str | None,
    disabled: bool,
    redemptions: int,
    usage_limit: int,
    now: datetime,
) -> str:
    """Whether a customer could use the coupon now, and if not, why not."""
    if disabled:
        return "disabled"
    if ends_at is not None and datetime.fromisoformat(ends_at) <= now:
        return "expired"
    if starts_at is not None and datetime.fromisoformat(starts_at) > now:
        return "not yet valid"
    return "used up" if redemptions >= usage_limit else "valid"


def discount_text(percent_bp: int, amount_off: Money | None) -> str:
    """`10 % off` or `5.00 EUR off`."""
    if amount_off is not None:
        return f"{money(amount_off.amount, amount_off.currency)} off"
    return f"{Decimal(percent_bp) / 100:g} % off"


def rate_text(rate_bp: int) -> str:
    return f"{Decimal(rate_bp) / 100:g} %"


def blueprint(services: Services) -> Blueprint:
    """The pricing pages, read from the pricing context's tables on `services.engine`,
    and their actions dispatched through `services.bus`."""
    pages = Blueprint("pricing", __name__)

    def show(
        section: str,
        values: dict[str, str] | None = None,
        errors: dict[str, list[str]] | None = None,
        *,
        status: int = 200,
    ) -> Response:
        now = datetime.now(UTC)
        with services.engine.connect() as conn:
            rows = _rows(section, conn, now)
        return page(
            f"dashboard/pricing_{section}.html",
            status=status,
            refresh=status == 200,
            sections=SECTIONS,
            section=section,
            rows=rows,
            values=values or {},
            errors=errors or {},
            new_id=str(uuid.uuid4()),
            now=now,
        )

    def dispatch(command: Command) -> Failure | str:
        result = services.bus.dispatch(command, command_metadata(acting_admin().actor))
        return result if isinstance(result, Failure) else ""

    def create(section: str) -> ResponseReturnValue:
        """Check the section's form, dispatch its command, and go back to the list."""
        setting = SETTINGS[section]
        typed = {name: request.form.get(name, "").strip() for name in setting.fields}
        typed |= {name: typed[name].upper() for name in setting.upper}
        try:
            form = setting.schema().load({k: v for k, v in typed.items() if v})
        except ma.ValidationError as error:
            return show(section, typed, field_errors(error), status=422)
        failed = dispatch(setting.command(form))
        if isinstance(failed, Failure):
            status = STATUS_BY_CODE.get(failed.code, 409)
            return show(section, typed, {"_": [failed.message]}, status=status)
        flash(setting.done(form), "ok")
        return redirect(url_for(f"dashboard.pricing.{section}"), code=303)

    @pages.get("/pricing")
    def index() -> ResponseReturnValue:
        return redirect(url_for("dashboard.pricing.taxes"))

    @pages.get("/pricing/taxes")
    def taxes() -> Response:
        """Each country's tax rate and how its prices are shown."""
        return show("taxes")

    @pages.post("/pricing/taxes")
    def set_tax_rate() -> ResponseReturnValue:
        """Set a country's rate and display (SetTaxRate)."""
        return create("taxes")

    @pages.get("/pricing/promotions")
    def promotions() -> Response:
        """Every promotion, newest start first, running, scheduled or ended."""
        return show("promotions")

    @pages.post("/pricing/promotions")
    def create_promotion() -> ResponseReturnValue:
        """Create a promotion (CreatePromotion), named by the id the form carries."""
        return create("promotions")

    @pages.get("/pricing/coupons")
    def coupons() -> Response:
        """Every coupon with its uses and whether it could be used now."""
        return show("coupons")

    @pages.post("/pricing/coupons")
    def create_coupon() -> ResponseReturnValue:
        """Create a coupon (CreateCoupon)."""
        return create("coupons")

    @pages.get("/pricing/prices")
    def prices() -> Response:
        """Every list price, by currency and SKU."""
        return show("prices")

    @pages.post("/pricing/prices")
    def set_list_price() -> ResponseReturnValue:
        """Set a SKU's price in a currency (SetListPrice)."""
        return create("prices")

    def remove(name: str, facts: list[tuple[str, str]], **ids: str) -> ResponseReturnValue:
        removal = REMOVALS[name]
        words = ids | {"name": ids.get("description") or ids.get("promotion_id", "")}
        back = url_for(f"dashboard.pricing.{removal.section}")
        keys: dict[str, Any] = {k: v for k, v in ids.items() if k != "description"}
        if not confirmed():
            return confirmation(
                title=removal.title.format(**words),
                facts=facts,
                consequence=removal.consequence,
                action_url=url_for(f"dashboard.pricing.{name}", **keys),
                fields={},
                confirm=removal.button,
                name=name,
                back=back,
            )
        failed = dispatch(removal.command(*keys.values()))
        if isinstance(failed, Failure):
            status = STATUS_BY_CODE.get(failed.code, 409)
            return show(removal.section, {}, {"_": [failed.message]}, status=status)
        flash(removal.done.format(**words), "ok")
        return redirect(back, code=303)

    @pages.post("/pricing/taxes/<country>/remove")
    def remove_tax_rate(country: str) -> ResponseReturnValue:
        """Stop taxing orders to `country` (RemoveTaxRate), once confirmed."""
        return remove("remove_tax_rate", [("Country", country)], country=country)

    @pages.post("/pricing/prices/<currency>/<sku>/remove")
    def remove_list_price(currency: str, sku: str) -> ResponseReturnValue:
        """Sell `sku` at its base price in `currency` again (RemoveListPrice), once confirmed."""
        facts = [("SKU", sku), ("Currency", currency)]
        return remove("remove_list_price", facts, currency=currency, sku=sku)

    @pages.post("/pricing/promotions/<promotion_id>/end")
    def end_promotion(promotion_id: str) -> ResponseReturnValue:
        """End a promotion now (EndPromotion), once confirmed."""
        description = request.form.get("description", "").strip()[:200]
        facts = [("Promotion", promotion_id)] + ([("Name", description)] if description else [])
        return remove("end_promotion", facts, promotion_id=promotion_id, description=description)

    @pages.post("/pricing/coupons/<code>/disable")
    def disable_coupon(code: str) -> ResponseReturnValue:
        """Disable a coupon for good (DisableCoupon), once confirmed."""
        return remove("disable_coupon", [("Code", code)], code=code)

    return pages


def _rows(section: str, conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """The section's rows as its template shows them."""
    if section == "taxes":
        return [
            {"country": rate.country, "rate": rate_text(rate.rate_bp),
             "display": "inclusive" if rate.prices_include_tax else "exclusive"}
            for rate in queries.tax_rates(conn)
        ]  # fmt: skip
    if section == "prices":
        return [
            {"sku": found.sku, "currency": found.currency,
             "price": money(found.price.amount, found.currency)}
            for found in queries.list_prices(conn)
        ]  # fmt: skip
    if section == "promotions":
        return [_promotion_row(found, now) for found in queries.promotions(conn)]
    return [_coupon_row(found, now) for found in queries.coupons(conn)]


def _promotion_row(found: queries.ListedPromotion, now: datetime) -> dict[str, Any]:
    terms = found.terms
    return {
        "promotion_id": terms.promotion_id,
        "description": terms.description,
        "discount": discount_text(terms.percent_bp, terms.amount_off),
        "applies_to": ", ".join(terms.skus) or "the order",
        "starts_at": terms.starts_at,
        "ends_at": terms.ends_at,
        "status": promotion_status(terms.starts_at, terms.ends_at, found.ended, now),
    }


def _coupon_row(found: queries.ListedCoupon, now: datetime) -> dict[str, Any]:
    terms, minimum = found.terms, found.terms.min_subtotal
    validity = coupon_validity(
        terms.starts_at, terms.ends_at, found.disabled, found.redemptions, terms.usage_limit, now
    )
    return {
        "code": terms.code,
        "description": terms.description,
        "discount": discount_text(terms.percent_bp, terms.amount_off),
        "minimum": None if minimum is None else money(minimum.amount, minimum.currency),
        "used": found.redemptions,
        "limit": terms.usage_limit,
        "starts_at": terms.starts_at,
        "ends_at": terms.ends_at,
        "validity": validity,
        "disabled": found.disabled,
    }
