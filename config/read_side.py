"""Builds the read models with the modes the settings ask for."""

from __future__ import annotations

from redis import Redis

from config.settings import Settings
from projections import catalog, order_detail, order_list, sales_analytics
from projections.projection import Mode, Projection


def build_projections(settings: Settings, redis: Redis) -> list[Projection]:
    def mode(name: str) -> Mode:
        return "sync" if name in settings.sync_projections else "async"

    return [
        catalog.projection(mode("catalog")),
        order_detail.projection(mode("order_detail")),
        sales_analytics.projection(mode("sales_analytics")),
        order_list.OrderList(redis, mode("order_list")),
    ]
