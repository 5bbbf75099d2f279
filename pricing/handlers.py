"""Command handlers: load, decide in the aggregate, save, and keep the checkout's lookup
tables (pricing.rules) in step in the same transaction."""

from __future__ import annotations

from kernel.command_bus import CommandBus
from kernel.errors import DomainError, NotFound
from kernel.unit_of_work import UnitOfWork
from pricing import rules
from pricing.commands import (
    CreateCoupon,
    CreatePromotion,
    DisableCoupon,
    EndPromotion,
    ReleaseCouponRedemption,
    RemoveListPrice,
    RemoveTaxRate,
    SetListPrice,
    SetTaxRate,
)
from pricing.domain import Coupon, PriceList, Promotion, TaxRateOfCountry
from pricing.events import CouponCreated, PromotionCreated


def register(bus: CommandBus) -> None:
    """Register this context's command handlers."""
    bus.register(SetListPrice, set_list_price)
    bus.register(RemoveListPrice, remove_list_price)
    bus.register(SetTaxRate, set_tax_rate)
    bus.register(RemoveTaxRate, remove_tax_rate)
    bus.register(CreatePromotion, create_promotion)
    bus.register(EndPromotion, end_promotion)
    bus.register(CreateCoupon, create_coupon)
    bus.register(DisableCoupon, disable_coupon)
    bus.register(ReleaseCouponRedemption, release_coupon_redemption)


def set_list_price(command: SetListPrice, uow: UnitOfWork) -> str:
    prices = uow.load(PriceList, command.currency) or PriceList(command.currency)
    prices.set(command.sku, command.price)
    rules.set_list_price(uow.conn, command.price, command.sku)
    uow.save(prices)
    return prices.id


def remove_list_price(command: RemoveListPrice, uow: UnitOfWork) -> str:
    prices = uow.load(PriceList, command.currency) or PriceList(command.currency)
    prices.remove(command.sku)
    rules.remove_list_price(uow.conn, command.currency, command.sku)
    uow.save(prices)
    return prices.id


def set_tax_rate(command: SetTaxRate, uow: UnitOfWork) -> str:
    rate = uow.load(TaxRateOfCountry, command.country) or TaxRateOfCountry(command.country)
    rate.set(command.rate_bp, command.prices_include_tax)
    rules.set_tax_rate(uow.conn, command.country, command.rate_bp, command.prices_include_tax)
    uow.save(rate)
    return rate.id


def remove_tax_rate(command: RemoveTaxRate, uow: UnitOfWork) -> str:
    rate = uow.load(TaxRateOfCountry, command.country) or TaxRateOfCountry(command.country)
    rate.remove()
    rules.remove_tax_rate(uow.conn, command.country)
    uow.save(rate)
    return rate.id


def create_promotion(command: CreatePromotion, uow: UnitOfWork) -> str:
    if uow.load(Promotion, command.promotion_id) is not None:
        raise DomainError(
            f"a promotion {command.promotion_id} exists already", code="promotion_exists"
        )
    promotion = Promotion.create(
        command.promotion_id,
        command.description,
        starts_at=command.starts_at,
        ends_at=command.ends_at,
        percent_bp=command.percent_bp,
        amount_off=command.amount_off,
        skus=command.skus,
    )
    created = promotion.pending_events[0]
    assert isinstance(created, PromotionCreated)
    rules.add_promotion(uow.conn, created)
    uow.save(promotion)
    return promotion.id


def end_promotion(command: EndPromotion, uow: UnitOfWork) -> str:
    promotion = uow.get(Promotion, command.promotion_id)
    promotion.end()
    rules.end_promotion(uow.conn, promotion.id)
    uow.save(promotion)
    return promotion.id


def create_coupon(command: CreateCoupon, uow: UnitOfWork) -> str:
    if uow.load(Coupon, Coupon.normalise(command.code)) is not None:
        raise DomainError(f"a coupon {command.code} exists already", code="coupon_exists")
    coupon = Coupon.create(
        command.code,
        command.description,
        usage_limit=command.usage_limit,
        percent_bp=command.percent_bp,
        amount_off=command.amount_off,
        starts_at=command.starts_at,
        ends_at=command.ends_at,
        min_subtotal=command.min_subtotal,
    )
    created = coupon.pending_events[0]
    assert isinstance(created, CouponCreated)
    rules.add_coupon(uow.conn, created)
    uow.save(coupon)
    return coupon.id


def disable_coupon(command: DisableCoupon, uow: UnitOfWork) -> str:
    coupon = _coupon(uow, command.code)
    coupon.disable()
    rules.disable_coupon(uow.conn, coupon.id)
    uow.save(coupon)
    return coupon.id


def release_coupon_redemption(command: ReleaseCouponRedemption, uow: UnitOfWork) -> str:
    coupon = _coupon(uow, command.code)
    coupon.release(command.order_id)
    rules.count_redemptions(uow.conn, coupon.id, coupon.uses)
    uow.save(coupon)
    return coupon.id


def _coupon(uow: UnitOfWork, code: str) -> Coupon:
    coupon = uow.load(Coupon, Coupon.normalise(code))
    if coupon is None:
        raise NotFound(f"no coupon has the code {Coupon.normalise(code)}")
    return coupon
