"""Signing in with an admin's token, and the guards in front of every page.

Each sign-in is a session record in Redis (`Sessions`): a random id, expiring with
the session, holding the admin's id and an HMAC of the digest of the token it signed
in with. The session cookie (signed by Flask with SECRET_KEY, HttpOnly, SameSite=Lax)
holds no token: only that id and a per-session CSRF token that every form posts back.
Every page asks Redis for the record and the admin's account for their current token's
digest, so signing out (which deletes the record) ends the session for every copy of
the cookie at once, and rotating an admin's token, disabling them or changing
ADMIN_TOKEN signs their sessions out. With Redis down nobody is signed in: pages
answer 503.

A viewer sees every page but changes nothing: the forms that act are not shown to
them, and a form posted anyway is refused with 403.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, redirect, request, session, url_for
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dashboard.common import page, problem
from kernel.admins import AdminAccounts
from kernel.auth import (
    BOOTSTRAP,
    BOOTSTRAP_ADMIN,
    Authenticator,
    AuthError,
    Principal,
    token_digest,
)

log = logging.getLogger("dashboard.auth")

OPEN_ENDPOINTS = {"dashboard.login", "dashboard.static"}
VIEWERS_MAY_POST = {"dashboard.login", "dashboard.logout"}
READ_ONLY = "You are signed in as a viewer: viewers see every page but change nothing."
STORE_DOWN = (RedisConnectionError, RedisTimeoutError)
_SESSIONS = "shop.dashboard.sessions"  # app.extensions key
_SIGNED_IN = "shop.dashboard.signed_in"  # request.environ key: the admin, or None


class Sessions:
    """Dashboard sessions in Redis: one key per session, named by a hash of its id (the
    id itself is only in the cookie), holding the admin's id and the fingerprint of the
    token they signed in with, and expiring when the session would."""

    KEY = "shop:dashboard:session:"

    def __init__(self, redis: Redis, admins: AdminAccounts, admin_token: str) -> None:
        self.redis = redis
        self.admins = admins
        self.admin_token = admin_token

    def start(self, admin: Principal, digest: bytes, lifetime: timedelta) -> str:
        """A new session for `admin`, signed in with the token of `digest`; returns its
        id (for the cookie)."""
        session_id = secrets.token_urlsafe(32)
        held = f"{admin.admin_id} {_fingerprint(digest)}"
        self.redis.set(self._key(session_id), held, ex=lifetime)
        return session_id

    def admin(self, session_id: object) -> Principal | None:
        """Who the session `session_id` signed in, while it exists and their token is still
        the one it signed in with (not rotated, not disabled); else None."""
        if not isinstance(session_id, str):
            return None
        held = self.redis.get(self._key(session_id))
        if not isinstance(held, bytes):
            return None
        admin_id, _, fingerprint = held.decode().partition(" ")
        if admin_id == BOOTSTRAP:
            if not self.admin_token:
                return None
            admin, digest = BOOTSTRAP_ADMIN, token_digest(self.admin_token)
        else:  # a record from before named admins holds no id: it is signed out
            account = self.admins.find(admin_id)
            if account is None or account.disabled_at is not None:
                return None
            admin, digest = account.principal, account.token_hash
        return admin if hmac.compare_digest(fingerprint, _fingerprint(digest)) else None

    def end(self, session_id: object) -> None:
        if isinstance(session_id, str):
            self.redis.delete(self._key(session_id))

    def _key(self, session_id: str) -> str:
        return self.KEY + hashlib.sha256(session_id.encode()).hexdigest()


def attach(
    parent: Blueprint,
    authenticator: Authenticator,
    admins: AdminAccounts,
    admin_token: str,
    redis: Redis,
) -> None:
    """Put the guards, the login and logout views and the forms' template helpers
    on the dashboard's `parent` blueprint; `authenticator` says whose token signs in
    (a named admin's from `admins`, or the bootstrap `admin_token`), `redis` is where
    the sessions are kept."""
    sessions = Sessions(redis, admins, admin_token)

    @parent.record_once
    def keep(state: BlueprintSetupState) -> None:  # for `signed_in` (RQ's pages ask too)
        state.app.extensions[_SESSIONS] = sessions

    @parent.app_context_processor
    def forms() -> dict[str, object]:
        return {
            "csrf_token": csrf_token,
            "signed_in": signed_in,
            "current_admin": current_admin,
            "may_change": may_change,
        }

    @parent.before_request
    def guard() -> ResponseReturnValue | None:
        """Posts need the session's CSRF token; every page but the login form needs a login;
        only an operator may post (but to sign in or out)."""
        if request.method == "POST" and not _csrf_ok():
            log.warning("dashboard form refused: bad CSRF token", extra={"path": request.path})
            message = "This form has expired or came from another site. Reload the page and retry."
            return problem(400, message)
        if request.endpoint == "dashboard.static":
            return None
        try:  # the login form too: with Redis down, signing in would fail anyway
            admin = current_admin()
        except STORE_DOWN as error:
            return _store_down(error)
        viewer = admin is not None and not admin.may_change
        if viewer and request.method == "POST" and request.endpoint not in VIEWERS_MAY_POST:
            return problem(403, READ_ONLY)
        if admin is not None or request.endpoint in OPEN_ENDPOINTS:
            return None
        target = request.full_path if request.method == "GET" else url_for("dashboard.orders.index")
        return redirect(url_for("dashboard.login", next=target.rstrip("?")))

    @parent.route("/login", methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        """The login form; posting an admin's token signs this browser in as them."""
        wanted = _local(request.values.get("next"))
        if request.method == "GET":
            if signed_in():
                return redirect(wanted)
            return page("dashboard/login.html", next=wanted, refresh=False)
        token = request.form.get("token", "")
        admin = _admin_of(authenticator, token)
        if admin is None:
            log.warning("dashboard sign-in refused", extra={"remote_addr": request.remote_addr})
            return page(
                "dashboard/login.html",
                status=401,
                next=wanted,
                error="That is not an admin token.",
                refresh=False,
            )
        try:
            sessions.end(session.get("id"))  # this browser's earlier session, if any
            lifetime = current_app.permanent_session_lifetime
            session_id = sessions.start(admin, token_digest(token), lifetime)
        except STORE_DOWN as error:
            return _store_down(error)
        log.info("dashboard sign-in", extra={"admin": admin.login, "role": admin.role})
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


def current_admin() -> Principal | None:
    """The admin this browser's session signed in (while it has not signed out or expired
    and their token still works), else None. Redis and the admin's account are asked once
    per request (the answer is kept in the WSGI environ, which lives exactly as long as
    the request); it is None until they answer, so a page drawn after Redis failed shows
    no menu. Raises Redis's ConnectionError or TimeoutError when Redis cannot be reached."""
    if _SIGNED_IN not in request.environ:
        request.environ[_SIGNED_IN] = None
        sessions: Sessions = current_app.extensions[_SESSIONS]
        request.environ[_SIGNED_IN] = sessions.admin(session.get("id"))
    found = request.environ[_SIGNED_IN]
    return found if isinstance(found, Principal) else None


def signed_in() -> bool:
    return current_admin() is not None


def may_change() -> bool:
    """Whether the admin signed in may act (forms that act are shown only then)."""
    admin = current_admin()
    return admin is not None and admin.may_change


def acting_admin() -> Principal:
    """The operator posting an action (the guard let only operators post)."""
    admin = current_admin()
    if admin is None or not admin.may_change:  # the guard's job: never reached
        raise PermissionError("no operator is signed in")
    return admin


def _admin_of(authenticator: Authenticator, token: str) -> Principal | None:
    """The admin whose token `token` is (a customer's token signs no one in)."""
    if not token:
        return None
    try:
        found = authenticator.verify(token)
    except AuthError:
        return None
    return found if found.kind == "admin" else None


def same_origin() -> bool:
    """The request came from a page of this site: the host of its Origin (else its
    Referer) is ours. The scheme is not compared, so TLS ending at a proxy is fine."""
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    return bool(source) and urlsplit(source).netloc == request.host


def _csrf_ok() -> bool:
    sent = request.form.get("csrf_token", "")
    held = session.get("csrf")
    return bool(sent) and isinstance(held, str) and hmac.compare_digest(sent, held)


def _fingerprint(digest: bytes) -> str:
    """Keyed, so Redis holds nothing a guess at a weak ADMIN_TOKEN could be checked with."""
    key = str(current_app.secret_key or "").encode()
    return hmac.new(key, b"dashboard-admin:" + digest, hashlib.sha256).hexdigest()


def _store_down(error: Exception) -> Response:
    """Nobody can be let in while Redis (where the sessions are) cannot be reached."""
    log.warning("dashboard sessions unavailable", extra={"error": str(error)[:300]})
    request.environ[_SIGNED_IN] = None  # the error page asks too
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
