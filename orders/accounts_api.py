# flask-smorest ships no type hints, so its decorators are untyped; the views stay annotated.
# mypy: disable-error-code="untyped-decorator"
"""HTTP endpoints of customer accounts: registering, signing in, renewing and ending a
session, changing the password.

A session has two tokens: the access token, sent as `Authorization: Bearer` with every
request and short-lived (ACCESS_TOKEN_TTL), and the refresh token, only ever sent here to
get new tokens, long-lived (REFRESH_TOKEN_TTL). Argon2 runs in these views, before and
after the database's short transactions, never inside one.
"""

from __future__ import annotations

import uuid
from typing import Any

from kernel.auth import Authenticator
from kernel.command_bus import CommandBus
from kernel.http import (
    BearerAuth,
    Blueprint,
    Commands,
    bearer_token,
    command_metadata,
    documented_problem,
    guarded,
    reject,
)
from kernel.messages import new_id
from kernel.results import Success
from orders.accounts import Accounts, PasswordChange, Tokens
from orders.cart_schemas import SignedInSchema, SignInWithCartSchema
from orders.commands import MergeCarts, RegisterCustomer, customer_cart_id
from orders.schemas import (
    ChangePasswordSchema,
    RegisterCustomerSchema,
    RenewSessionSchema,
    SessionSchema,
)

# The same answer whether or not the email is registered already would need the account
# to be confirmed out of band; at least the answer does not echo the address back.
EMAIL_TAKEN = "This email cannot be registered."
# One answer for an unknown email and a wrong password: no one learns who has an account.
BAD_CREDENTIALS = "The email or password is wrong."
SESSION_OVER = "The refresh token is not valid, has expired or its session has ended."
UNAUTHORIZED = "Missing, forged, expired or revoked bearer token"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="shop"'}
# Tokens are credentials: no cache along the way may keep an answer carrying them.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
TOKEN_HEADERS = {
    "Cache-Control": {
        "description": "`no-store`: the answer holds credentials",
        "schema": {"type": "string"},
    },
}


def blueprint(bus: CommandBus, authenticator: Authenticator, accounts: Accounts) -> Blueprint:
    """The account endpoints: registering dispatches through `bus`; sessions and passwords
    are `accounts`'; bearer tokens are checked by `authenticator`."""
    blp = Blueprint(
        "accounts", __name__, description="Customer accounts: registering, sessions, passwords"
    )
    auth, commands = BearerAuth(authenticator), Commands(bus)
    customer_only = guarded(
        blp, auth.customer, "The admin token has no session to act on", unauthorized=UNAUTHORIZED
    )

    @blp.route("/api/customers", methods=["POST"])
    @blp.arguments(RegisterCustomerSchema())
    @blp.response(201, SessionSchema, headers=TOKEN_HEADERS)
    @documented_problem(blp, 409, "The email cannot be registered (email_taken)")
    @documented_problem(blp, 429, "Too many registrations from this address; see Retry-After")
    def register_customer(body: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        """Register a customer with a password; the answer opens their first session."""
        customer_id = new_id()
        password_hash = accounts.passwords.hash(body["password"])
        command = RegisterCustomer(customer_id, body["email"], body["name"], password_hash)
        commands.dispatch(
            command,
            command_metadata(f"customer:{customer_id}"),
            messages={"email_taken": EMAIL_TAKEN},
        )
        return _session(accounts.open_session(customer_id)), NO_STORE

    @blp.route("/api/sessions", methods=["POST"])
    @blp.arguments(SignInWithCartSchema())
    @blp.response(201, SignedInSchema, headers=TOKEN_HEADERS)
    @documented_problem(blp, 401, "The email or password is wrong (one answer for both)")
    @documented_problem(blp, 429, "Too many sign-in attempts from this address; see Retry-After")
    def sign_in(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Sign in with email and password: a new session. With the `cart_id` of an
        anonymous cart, that cart is merged into the customer's own (`cart_id` answered)."""
        tokens = accounts.sign_in(body["email"], body["password"])
        if tokens is None:
            reject(401, BAD_CREDENTIALS, code="bad_credentials", headers=CHALLENGE)
        signed_in = _session(tokens) | _merged(bus, tokens.customer_id, body.get("cart_id"))
        return signed_in, NO_STORE

    @blp.route("/api/sessions/renew", methods=["POST"])
    @blp.arguments(RenewSessionSchema())
    @blp.response(200, SessionSchema, headers=TOKEN_HEADERS)
    @documented_problem(
        blp,
        401,
        "The refresh token is unknown, expired, already used (which ends its session) or its"
        " session ended (session_over)",
    )
    def renew_session(body: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        """Exchange the refresh token for new access and refresh tokens; the session's
        previous tokens (this refresh token and its access token) stop working. A refresh
        token already exchanged, presented again, ends the session (it was copied)."""
        tokens = accounts.renew(body["refresh_token"])
        if tokens is None:
            reject(401, SESSION_OVER, code="session_over", headers=CHALLENGE)
        return _session(tokens), NO_STORE

    @blp.route("/api/sessions/current", methods=["DELETE"])
    @customer_only
    @blp.response(204)
    def sign_out() -> None:
        """Sign out: the session of the bearer token ends, both its tokens stop working at
        once."""
        auth.customer()
        accounts.sign_out(_presented_token())

    @blp.route("/api/me/password", methods=["POST"])
    @customer_only
    @blp.arguments(ChangePasswordSchema())
    @blp.response(204)
    @documented_problem(
        blp,
        409,
        "The password was changed by another request meanwhile (password_changed); nothing"
        " was changed",
    )
    @documented_problem(
        blp,
        422,
        "Invalid fields, or current_password is not the password (a field error on"
        " current_password; the bearer token stays valid)",
    )
    @documented_problem(blp, 429, "Too many attempts for this customer; see Retry-After")
    def change_password(body: dict[str, str]) -> None:
        """Change the password; every other session of the customer ends, the one of this
        bearer token stays."""
        customer_id = auth.customer()
        outcome = accounts.change_password(
            customer_id, _presented_token(), body["current_password"], body["new_password"]
        )
        if outcome is PasswordChange.WRONG_PASSWORD:
            reject(
                422,
                "The current password is wrong.",
                code="wrong_password",
                errors={"current_password": ["Is not the current password."]},
            )
        if outcome is PasswordChange.RACED:
            reject(409, "The password changed meanwhile; try again.", code="password_changed")

    return blp


def _session(tokens: Tokens) -> dict[str, Any]:
    return {
        "customer_id": tokens.customer_id,
        "access_token": tokens.access_token,
        "token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": tokens.access_ttl,
        "refresh_token": tokens.refresh_token,
        "refresh_expires_in": tokens.refresh_ttl,
    }


def _merged(bus: CommandBus, customer_id: str, cart_id: uuid.UUID | None) -> dict[str, Any]:
    """The customer's cart, with the anonymous cart `cart_id` merged into it if one is
    given and it can be: signing in never fails for a cart gone or too full to merge."""
    own = customer_cart_id(customer_id)
    if cart_id is None:
        return {"cart_id": own, "cart_merged": False, "consistency_token": None}
    command = MergeCarts(own, str(cart_id), customer_id)
    result = bus.dispatch(command, command_metadata(f"customer:{customer_id}"))
    merged = isinstance(result, Success)
    token = result.consistency_token if isinstance(result, Success) else None
    return {"cart_id": own, "cart_merged": merged, "consistency_token": token}


def _presented_token() -> str:
    """The request's bearer token, which the guard has verified already."""
    token = bearer_token()
    assert token is not None, "guarded: a request without a token is refused before"
    return token
