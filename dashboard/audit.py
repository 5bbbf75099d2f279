"""Audit: what the admins did, newest first, by whom (see kernel.audit)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from dashboard.actors import named
from dashboard.common import page, problem
from dashboard.services import Services
from kernel import audit
from kernel.auth import BOOTSTRAP

PAGE_SIZE = 50


def blueprint(services: Services) -> Blueprint:
    pages = Blueprint("audit", __name__)

    @pages.get("/audit")
    def index() -> Response:
        """Admin actions newest first, a page at a time, optionally one admin's."""
        try:
            before = (
                audit.Cursor.parse(request.args["before"]) if "before" in request.args else None
            )
        except ValueError:
            return problem(422, "That page of the audit trail does not exist: start again.")
        login = request.args.get("admin", "").strip()
        actor = None
        if login:
            admin_id = BOOTSTRAP if login == BOOTSTRAP else services.admins.admin_id(login)
            actor = f"admin:{admin_id or 'nobody'}"  # an unknown login has no actions
        with services.engine.connect() as conn:
            actions, more = audit.page(conn, before=before, limit=PAGE_SIZE, actor=actor)
        return page(
            "dashboard/audit.html",
            refresh=before is None,
            actions=actions,
            actors=named(services.admins, (action.actor for action in actions)),
            admins=services.admins.listing(),
            login=login,
            next_cursor=more.token() if more else None,
            paged=before is not None,
        )

    return pages
