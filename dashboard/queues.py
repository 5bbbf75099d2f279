"""RQ's own dashboard (rq-dashboard), mounted at /admin/rq behind the admin login.

Its pages change jobs with XHR posts that carry no CSRF token, so a post must
come from this site (Origin or Referer), and the one action it also allows by
GET (requeue every failed job of a queue) is refused unless posted.
"""

from __future__ import annotations

from flask import Flask, redirect, request, url_for
from flask.typing import ResponseReturnValue

from dashboard.auth import READ_ONLY, current_admin, same_origin
from dashboard.common import problem

PREFIX = "/admin/rq"


def mount(app: Flask, redis_url: str) -> None:
    """Serve RQ's dashboard for the Redis at `redis_url` to the admins signed in (its
    actions to operators only)."""
    import rq_dashboard
    from rq_dashboard.web import setup_rq_connection

    app.config.setdefault("RQ_DASHBOARD_REDIS_URL", [redis_url])
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 5000)
    setup_rq_connection(app)  # its job actions need the connection before any page view
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)

    @app.before_request
    def guard() -> ResponseReturnValue | None:
        if request.blueprint != "rq_dashboard":
            return None
        admin = current_admin()
        if admin is None:
            return redirect(url_for("dashboard.login", next=PREFIX + "/"))
        if request.method != "GET" and not admin.may_change:
            return problem(403, READ_ONLY)
        if request.method != "GET" and not same_origin():
            return problem(403, "Queue actions must come from the queue page itself.")
        if request.method == "GET" and request.endpoint == "rq_dashboard.requeue_all":
            return problem(405, "Requeueing takes a POST.")
        return None
