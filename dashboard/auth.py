"""Signing in with the admin token, and the guards in front of every page.

The session cookie (signed by Flask with SECRET_KEY, HttpOnly, SameSite=Lax)
holds no token: only an HMAC of the admin token, so changing ADMIN_TOKEN signs
everyone out, and a per-session CSRF token that every form posts back.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from functools import partial
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from dashboard.common import page, problem

log = logging.getLogger("dashboard.auth")

OPEN_ENDPOINTS = {"dashboard.login", "dashboard.static"}


def attach(parent: Blueprint, admin_token: str) -> None:
    """Put the guards, the login and logout views and the forms' template helpers
    on the dashboard's `parent` blueprint; `admin_token` is what signs in."""

    @parent.app_context_processor
    def forms() -> dict[str, object]:
        return {"csrf_token": csrf_token, "signed_in": partial(signed_in, admin_token)}

    @parent.before_request
    def guard() -> ResponseReturnValue | None:
        """Posts need the session's CSRF token; every page but the login form needs a login."""
        if request.method == "POST" and not _csrf_ok():
            log.warning("dashboard form refused: bad CSRF token", extra={"path": request.path})
            message = "This form has expired or came from another site. Reload the page and retry."
            return problem(400, message)
        if request.endpoint in OPEN_ENDPOINTS or signed_in(admin_token):
            return None
        target = request.full_path if request.method == "GET" else url_for("dashboard.orders.index")
        return redirect(url_for("dashboard.login", next=target.rstrip("?")))

    @parent.route("/login", methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        """The login form; posting the admin token signs this browser in."""
        wanted = _local(request.values.get("next"))
        if request.method == "GET":
            if signed_in(admin_token):
                return redirect(wanted)
            return page("dashboard/login.html", next=wanted, refresh=False)
        token = request.form.get("token", "")
        if not token or not hmac.compare_digest(_fingerprint(token), _fingerprint(admin_token)):
            log.warning("dashboard sign-in refused", extra={"remote_addr": request.remote_addr})
            return page(
                "dashboard/login.html",
                status=401,
                next=wanted,
                error="That is not the admin token.",
                refresh=False,
            )
        session.clear()
        session["admin"] = _fingerprint(admin_token)
        session["csrf"] = secrets.token_urlsafe(32)
        return redirect(wanted, code=303)

    @parent.post("/logout")
    def logout() -> ResponseReturnValue:
        session.clear()
        return redirect(url_for("dashboard.login"), code=303)


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def signed_in(admin_token: str) -> bool:
    """This browser signed in with `admin_token`."""
    held = session.get("admin")
    return isinstance(held, str) and hmac.compare_digest(held, _fingerprint(admin_token))


def same_origin() -> bool:
    """The request came from a page of this site: the host of its Origin (else its
    Referer) is ours. The scheme is not compared, so TLS ending at a proxy is fine."""
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    return bool(source) and urlsplit(source).netloc == request.host


def _csrf_ok() -> bool:
    sent = request.form.get("csrf_token", "")
    held = session.get("csrf")
    return bool(sent) and isinstance(held, str) and hmac.compare_digest(sent, held)


def _fingerprint(token: str) -> str:
    key = str(current_app.secret_key or "").encode()
    return hmac.new(key, b"dashboard-admin:" + token.encode(), hashlib.sha256).hexdigest()


def _local(target: str | None) -> str:
    """Only a path inside the dashboard is a place to go back to after signing in."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin/"):
        return url_for("dashboard.orders.index")
    if parts.path.startswith(("/admin/login", "/admin/logout", "/admin/api/")):
        return url_for("dashboard.orders.index")
    return parts.path + (f"?{parts.query}" if parts.query else "")
