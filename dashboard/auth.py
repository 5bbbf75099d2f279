"""Signing in with the admin token, and the guards in front of every page.

Each sign-in is a session record in Redis (`Sessions`): a random id, expiring with
the session, holding only an HMAC of the admin token it signed in with. The session
cookie (signed by Flask with SECRET_KEY, HttpOnly, SameSite=Lax) holds no token:
only that id and a per-session CSRF token that every form posts back. Every page
asks Redis for the record, so signing out (which deletes it) ends the session for
every copy of the cookie at once, and changing ADMIN_TOKEN signs everyone out. With
Redis down nobody is signed in: pages answer 503.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from functools import partial
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, redirect, request, session, url_for
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dashboard.common import page, problem

log = logging.getLogger("dashboard.auth")

OPEN_ENDPOINTS = {"dashboard.login", "dashboard.static"}
STORE_DOWN = (RedisConnectionError, RedisTimeoutError)
_SESSIONS = "shop.dashboard.sessions"  # app.extensions key
_SIGNED_IN = "shop.dashboard.signed_in"  # request.environ key


class Sessions:
    """Dashboard sessions in Redis: one key per session, named by a hash of its id (the
    id itself is only in the cookie), holding the fingerprint of the admin token it
    signed in with, and expiring when the session would."""

    KEY = "shop:dashboard:session:"

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def start(self, fingerprint: str, lifetime: timedelta) -> str:
        """A new session for `fingerprint`; returns its id (for the cookie)."""
        session_id = secrets.token_urlsafe(32)
        self.redis.set(self._key(session_id), fingerprint, ex=lifetime)
        return session_id

    def holds(self, session_id: object, fingerprint: str) -> bool:
        """The session `session_id` still exists and signed in with `fingerprint`."""
        if not isinstance(session_id, str):
            return False
        held = self.redis.get(self._key(session_id))
        return isinstance(held, bytes) and hmac.compare_digest(held, fingerprint.encode())

    def end(self, session_id: object) -> None:
        if isinstance(session_id, str):
            self.redis.delete(self._key(session_id))

    def _key(self, session_id: str) -> str:
        return self.KEY + hashlib.sha256(session_id.encode()).hexdigest()


def attach(parent: Blueprint, admin_token: str, redis: Redis) -> None:
    """Put the guards, the login and logout views and the forms' template helpers
    on the dashboard's `parent` blueprint; `admin_token` is what signs in, `redis`
    where the sessions are kept."""
    sessions = Sessions(redis)

    @parent.record_once
    def keep(state: BlueprintSetupState) -> None:  # for `signed_in` (RQ's pages ask too)
        state.app.extensions[_SESSIONS] = sessions

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
        if request.endpoint == "dashboard.static":
            return None
        try:  # the login form too: with Redis down, signing in would fail anyway
            if signed_in(admin_token) or request.endpoint in OPEN_ENDPOINTS:
                return None
        except STORE_DOWN as error:
            return _store_down(error)
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
        try:
            sessions.end(session.get("id"))  # this browser's earlier session, if any
            lifetime = current_app.permanent_session_lifetime
            session_id = sessions.start(_fingerprint(admin_token), lifetime)
        except STORE_DOWN as error:
            return _store_down(error)
        session.clear()
        session["id"] = session_id
        session["csrf"] = secrets.token_urlsafe(32)
        return redirect(wanted, code=303)

    @parent.post("/logout")
    def logout() -> ResponseReturnValue:
        """Ends the session in Redis, so a copy of the cookie stops working too."""
        sessions.end(session.get("id"))
        session.clear()
        return redirect(url_for("dashboard.login"), code=303)


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def signed_in(admin_token: str) -> bool:
    """This browser's session record says it signed in with `admin_token` (and it has not
    signed out or expired since). Redis is asked once per request (the answer is kept in
    the WSGI environ, which lives exactly as long as the request); it is False until
    Redis answers, so a page drawn after Redis failed shows no menu. Raises Redis's
    ConnectionError or TimeoutError when Redis cannot be reached."""
    if _SIGNED_IN not in request.environ:
        request.environ[_SIGNED_IN] = False
        sessions: Sessions = current_app.extensions[_SESSIONS]
        held = sessions.holds(session.get("id"), _fingerprint(admin_token))
        request.environ[_SIGNED_IN] = held
    return bool(request.environ[_SIGNED_IN])


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


def _store_down(error: Exception) -> Response:
    """Nobody can be let in while Redis (where the sessions are) cannot be reached."""
    log.warning("dashboard sessions unavailable", extra={"error": str(error)[:300]})
    request.environ[_SIGNED_IN] = False  # the error page asks too
    message = "Sign-ins cannot be checked: Redis is unavailable. Try again shortly."
    response = problem(503, message)
    response.headers["Retry-After"] = "2"
    return response


def _local(target: str | None) -> str:
    """Only a path inside the dashboard is a place to go back to after signing in."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin/"):
        return url_for("dashboard.orders.index")
    if parts.path.startswith(("/admin/login", "/admin/logout", "/admin/api/")):
        return url_for("dashboard.orders.index")
    return parts.path + (f"?{parts.query}" if parts.query else "")
