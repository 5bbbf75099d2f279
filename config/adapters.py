"""Adapters that let one context use what another owns, without importing it."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from inventory import queries as inventory
from kernel.codec import to_data
from kernel.errors import DomainError
from kernel.event_store import EventStore
from kernel.messages import Metadata
from kernel.unit_of_work import UnitOfWork, lock_streams
from orders.events import Discount, PricedLine, TaxLine
from orders.ports import CatalogEntry, CatalogLine, PricedOrder, PricingRequest
from payments import queries as payments
from pricing import queries as pricing_rules
from pricing.checkout import Checkout, Item
from pricing.engine import Breakdown
from projections import catalog


class InventoryCatalog:
    """Orders' product catalog port: the catalog read model's listings (one query), and
    inventory's own answer for a SKU the read model has not caught up with. The catalog
    is synchronous by default, so it has; when it is not (asynchronous mode, a rebuild
    just switched in), the stock item answers."""

    def describe(self, uow: UnitOfWork, skus: Collection[str]) -> Mapping[str, CatalogEntry]:
        streams = {sku: inventory.stock_stream(sku) for sku in set(skus)}
        entries = {}
        for sku, listing in catalog.current_listings(uow.conn, streams).items():
            if listing is not None:
                entries[sku] = CatalogEntry(sku, listing.name, listing.price)
            elif (product := inventory.product(uow, sku)) is not None:
                entries[sku] = CatalogEntry(sku, product.name, product.price)
        return entries


class PaymentsLedger:
    """Orders' payment ledger port: the payment aggregate's own answer."""

    def refunded(self, uow: UnitOfWork, order_id: str) -> bool:
        return payments.refunded(uow, order_id)


class PricingContext:
    """Orders' pricing port: the pricing context's checkout, its figures handed over in
    the orders context's own types."""

    def __init__(self, checkout: Checkout) -> None:
        self.checkout = checkout

    def quote(self, uow: UnitOfWork, request: PricingRequest) -> PricedOrder:
        breakdown = self.checkout.quote(
            uow, _items(request), request.destination, request.coupon_code, request.currency
        )
        return _priced_order(breakdown)

    def redeem(self, uow: UnitOfWork, order_id: str, request: PricingRequest) -> PricedOrder:
        breakdown = self.checkout.redeem(
            uow,
            order_id,
            _items(request),
            request.destination,
            request.coupon_code,
            request.currency,
        )
        return _priced_order(breakdown)


def _items(request: PricingRequest) -> list[Item]:
    return [
        Item(line.entry.sku, line.entry.name, line.quantity, line.entry.unit_price)
        for line in request.lines
    ]


def _priced_order(breakdown: Breakdown) -> PricedOrder:
    return PricedOrder(
        lines=tuple(
            PricedLine(
                line.sku,
                line.name,
                line.quantity,
                line.unit_price,
                line.line_total,
                line.discount,
                line.tax,
                line.total,
            )
            for line in breakdown.lines
        ),
        subtotal=breakdown.subtotal,
        discounts=tuple(
            Discount(discount.source, discount.description, discount.amount)
            for discount in breakdown.discounts
        ),
        discount_total=breakdown.discount_total,
        taxes=tuple(
            TaxLine(tax.country, tax.rate_bp, tax.taxable, tax.amount) for tax in breakdown.taxes
        ),
        tax_total=breakdown.tax_total,
        shipping=breakdown.shipping,
        total=breakdown.total,
        prices_include_tax=breakdown.prices_include_tax,
        coupon_code=breakdown.coupon_code,
    )


def lock_stock(conn: Connection, skus: Collection[str]) -> None:
    """The saga's port to lock SKUs' stock streams up front (see kernel.unit_of_work)."""
    lock_streams(conn, [inventory.stock_stream(sku) for sku in skus])


class CartQuotes:
    """The cart view's quote (projections.queries.QuoteCart): what the checkout would charge
    for the cart's lines now, priced by the pricing context and redeeming nothing. A coupon
    that cannot apply is left out of the figures and named with the reason, so the shopper
    still sees totals; None when a SKU is no longer sold."""

    def __init__(
        self, store: EventStore, catalog: InventoryCatalog, pricing: PricingContext
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.pricing = pricing

    def __call__(
        self,
        conn: Connection,
        lines: Sequence[tuple[str, int]],
        coupon_code: str | None,
        destination: str,
    ) -> dict[str, Any] | None:
        uow = UnitOfWork(conn, self.store, Metadata())
        entries = self.catalog.describe(uow, {sku for sku, _ in lines})
        if any(sku not in entries for sku, _ in lines):
            return None
        priced = tuple(CatalogLine(entries[sku], quantity) for sku, quantity in lines)
        problem = None
        try:
            quote = self.pricing.quote(uow, PricingRequest(None, priced, destination, coupon_code))
        except DomainError as refused:
            if coupon_code is None or not refused.code.startswith("coupon_"):
                return None
            problem = {"code": refused.code, "detail": refused.message}
            quote = self.pricing.quote(uow, PricingRequest(None, priced, destination))
        return to_data(quote) | {"coupon_problem": problem}


def tax_display(conn: Connection, country: str) -> tuple[int, bool] | None:
    """The product queries' tax display (projections.queries.TaxDisplay): a destination's
    rate and whether it shows prices with tax, as the pricing context holds them now."""
    found = pricing_rules.tax_rate(conn, country)
    return None if found is None else (found.rate_bp, found.prices_include_tax)
