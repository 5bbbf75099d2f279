"""The admin dashboard: server-rendered pages over the read side, actions
through the command bus. `config` wires it with `init_app`."""

from __future__ import annotations

from flask import Flask

from dashboard import (
    audit,
    auth,
    common,
    filters,
    inventory,
    orders,
    parked,
    pricing,
    projections,
    queues,
    sagas,
    sales,
)  # fmt: skip
from dashboard.services import Services

__all__ = ["Services", "init_app"]


def init_app(app: Flask, services: Services) -> None:
    """Serve the dashboard under /admin (and RQ's own under /admin/rq if asked)."""
    parent = common.parent()
    auth.attach(
        parent, services.authenticator, services.admins, services.admin_token, services.redis
    )
    for name, template_filter in filters.FILTERS.items():
        parent.add_app_template_filter(template_filter, name)
    for group in (orders, sales, projections, sagas, parked, inventory, pricing, audit):
        parent.register_blueprint(group.blueprint(services))
    app.register_blueprint(parent)
    if services.rq_redis_url:
        queues.mount(app, services.rq_redis_url)
