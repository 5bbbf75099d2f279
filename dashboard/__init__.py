"""The admin dashboard: server-rendered pages over the read side, actions
through the command bus. `config` wires it with `init_app`."""

from __future__ import annotations

from flask import Flask

from dashboard import (
    auth,  # noqa: F401  (sign-in views and guards of the parent blueprint)
    filters,
    inventory,
    orders,
    projections,
    queues,
    sagas,
    sales,
)
from dashboard.common import blueprint
from dashboard.services import Services

__all__ = ["Services", "init_app"]

for name, template_filter in filters.FILTERS.items():
    blueprint.add_app_template_filter(template_filter, name)
for module in (orders, sales, projections, sagas, inventory):
    blueprint.register_blueprint(module.blueprint)


def init_app(app: Flask, services: Services) -> None:
    """Serve the dashboard under /admin (and RQ's own under /admin/rq if asked)."""
    app.extensions["dashboard"] = services
    app.register_blueprint(blueprint)
    if services.rq_redis_url:
        queues.mount(app, services.rq_redis_url)
