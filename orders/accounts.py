"""Customer accounts and their sessions: the credentials of the write side.

They live in tables of their own (migration 0011), not in the event log: a password hash
or a token is a secret to be replaced and forgotten, not a fact to keep forever.

- `customer_accounts`: per customer, the SHA-256 digest of the normalised email (unique)
  and the argon2 hash of the password. RegisterCustomer claims the email in its own
  transaction (`claim_email`), so two registrations of one email cannot both succeed,
  whatever a read model's lag. A digest, not the email: this table holds no plaintext
  personal data to erase.
- `customer_sessions`: per sign-in, the SHA-256 digests of its access token (short-lived,
  sent with every request) and refresh token (long-lived, only exchanged for new ones).
  The tokens themselves are random and never stored: a copy of the table signs no one in.

Every transaction here is a statement or two; argon2 runs before or after, never inside.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import Engine, Row, TextClause, text

from kernel.auth import AuthError, token_digest
from kernel.driver import autocommit
from kernel.errors import DomainError
from kernel.personal_data import lookup_digest
from kernel.unit_of_work import UnitOfWork
from orders.domain import normalise_email
from orders.passwords import Passwords
from orders.session_cache import REVOKED, SessionCache


def email_digest(email: str) -> bytes:
    return lookup_digest(normalise_email(email))


_CLAIM = text(
    "INSERT INTO customer_accounts (customer_id, email_digest, password_hash)"
    " VALUES (:customer, :email, :password) ON CONFLICT (email_digest) DO NOTHING"
    " RETURNING customer_id"
)


def claim_email(uow: UnitOfWork, customer_id: str, email: str, password_hash: str) -> None:
    """Create the customer's account in the command's transaction; DomainError
    `email_taken` when another account has the email. A registration of the same email
    still under way makes this wait for its outcome (the unique index's lock), so of two
    concurrent ones exactly one claims it, and the other is refused, not retried."""
    claimed = uow.conn.execute(
        _CLAIM, {"customer": customer_id, "email": email_digest(email), "password": password_hash}
    ).first()
    if claimed is None:
        raise DomainError("the email is registered already", code="email_taken")


def close(uow: UnitOfWork, customer_id: str) -> None:
    """Delete the customer's account in the command's transaction: their email digest
    and password hash, and every session with it (a forgotten customer signs in no more)."""
    uow.conn.execute(_CLOSE, {"customer": customer_id})


_CLOSE = text("DELETE FROM customer_accounts WHERE customer_id = :customer")


@dataclass(frozen=True, slots=True)
class Tokens:
    """A session's current tokens, as handed to the customer once."""

    customer_id: str
    access_token: str
    refresh_token: str
    access_ttl: int  # seconds
    refresh_ttl: int


class PasswordChange(Enum):
    CHANGED = "changed"
    WRONG_PASSWORD = "wrong_password"
    RACED = "raced"  # changed by another request meanwhile: nothing was changed


_SESSION_OF = text(
    "SELECT customer_id, extract(epoch FROM access_expires_at - now()) AS live_for,"
    " revoked_at IS NOT NULL AS ended FROM customer_sessions WHERE access_hash = :access"
)
_ACCOUNT_BY_EMAIL = text(
    "SELECT customer_id, password_hash FROM customer_accounts WHERE email_digest = :email"
)
_PASSWORD_OF = text("SELECT password_hash FROM customer_accounts WHERE customer_id = :customer")
# The same password, hashed again with today's parameters (not a change: no date moves).
_REHASH = text(
    "UPDATE customer_accounts SET password_hash = :new"
    " WHERE customer_id = :customer AND password_hash = :old RETURNING customer_id"
)
# Only while the password checked is still the account's: a sign-in checked against a
# password that a concurrent change has just replaced opens nothing.
_OPEN = text(
    "INSERT INTO customer_sessions (session_id, customer_id, access_hash, access_expires_at,"
    " refresh_hash, refresh_expires_at)"
    " SELECT :session, customer_id, :access, now() + make_interval(secs => :access_ttl),"
    " :refresh, now() + make_interval(secs => :refresh_ttl)"
    " FROM customer_accounts WHERE customer_id = :customer"
    " AND password_hash IS NOT DISTINCT FROM :checked"
    " RETURNING session_id"
)
# Rotation: both tokens are replaced, so the old access and refresh tokens die at once.
# The old access digest comes back from the row as it was, for the session cache.
_RENEW = text(
    "UPDATE customer_sessions AS s SET access_hash = :access,"
    " access_expires_at = now() + make_interval(secs => :access_ttl),"
    " refresh_hash = :refresh, refresh_expires_at = now() + make_interval(secs => :refresh_ttl),"
    " replaced_refresh_hash = s.refresh_hash"
    " FROM customer_sessions AS before"
    " WHERE before.session_id = s.session_id AND s.refresh_hash = :old"
    " AND s.revoked_at IS NULL AND s.refresh_expires_at > now()"
    " RETURNING s.customer_id, before.access_hash AS replaced_access_hash"
)
# A refresh token already exchanged, presented again: either the customer or someone who
# copied it used it first, and nothing tells which, so the session ends for both (OAuth
# 2.0 Security BCP, refresh token rotation). A token two renewals old is simply unknown.
_END_REPLAYED = text(
    "UPDATE customer_sessions SET revoked_at = now(),"
    " refresh_expires_at = least(refresh_expires_at, now())"
    " WHERE replaced_refresh_hash = :old AND revoked_at IS NULL RETURNING access_hash"
)
# An ended session's refresh expiry moves to its end: `forget_ended_sessions` finds both.
_END = text(
    "UPDATE customer_sessions SET revoked_at = now(),"
    " refresh_expires_at = least(refresh_expires_at, now())"
    " WHERE access_hash = :access AND revoked_at IS NULL RETURNING access_hash"
)
_SET_PASSWORD = text(
    "UPDATE customer_accounts SET password_hash = :new, password_changed_at = now()"
    " WHERE customer_id = :customer AND password_hash = :old"
)
_END_OTHERS = text(
    "UPDATE customer_sessions SET revoked_at = now(),"
    " refresh_expires_at = least(refresh_expires_at, now())"
    " WHERE customer_id = :customer AND revoked_at IS NULL AND access_hash <> :keep"
    " RETURNING access_hash"
)
# In bounded batches, by the index on refresh_expires_at: a sweep never holds a long lock.
_FORGET = text(
    "WITH gone AS (DELETE FROM customer_sessions WHERE session_id IN ("
    " SELECT session_id FROM customer_sessions"
    " WHERE refresh_expires_at < now() - make_interval(secs => :kept_for)"
    " ORDER BY refresh_expires_at LIMIT :batch) RETURNING 1)"
    " SELECT count(*) AS forgotten FROM gone"
)
ENDED_SESSIONS_KEPT = 24 * 3600
"""Seconds a session is kept once it ended or its refresh token expired (so a late token
is told it was revoked or has expired, not that it is unknown); then it is deleted."""


class Accounts:
    """Signing customers in and out, and their passwords, over `engine`. Also the
    kernel's `CustomerTokens`: what a customer's bearer token stands for."""

    def __init__(
        self,
        engine: Engine,
        passwords: Passwords,
        *,
        access_ttl: int,
        refresh_ttl: int,
        cache: SessionCache | None = None,
    ) -> None:
        self.engine = engine
        self.passwords = passwords
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.cache = cache

    def customer_for(self, token: str) -> str:
        """The customer of a live session whose access token is `token`: from the
        session cache, else one lookup by the unique index on its digest; AuthError
        otherwise."""
        digest = token_digest(token)
        cached = self.cache.lookup(digest) if self.cache else None
        if cached == REVOKED:
            raise AuthError("the token was revoked")
        if cached is not None:
            return cached
        found = self._run(_SESSION_OF, {"access": digest})
        if found is None:
            raise AuthError("the token is not valid")
        if found.ended:
            raise AuthError("the token was revoked")
        if found.live_for <= 0:
            raise AuthError("the token has expired")
        if self.cache:
            self.cache.remember(digest, str(found.customer_id), float(found.live_for))
        return str(found.customer_id)

    def open_session(self, customer_id: str) -> Tokens:
        """A new session of a customer just registered (who proved no password: it was
        set a moment ago)."""
        tokens = self._open(customer_id, self._password_of(customer_id))
        if tokens is None:
            raise LookupError(f"customer {customer_id} has no account")
        return tokens

    def sign_in(self, email: str, password: str) -> Tokens | None:
        """A new session when `password` is the password of the account of `email`; None
        when it is not, or there is no such account, after the same work."""
        account = self._run(_ACCOUNT_BY_EMAIL, {"email": email_digest(email)})
        password_hash: str | None = None if account is None else account.password_hash
        matched = self.passwords.matches(password_hash, password)  # even without: timing
        if account is None or password_hash is None or not matched:
            return None
        tokens = self._open(account.customer_id, password_hash)
        if tokens is not None and self.passwords.outdated(password_hash):
            # The password is at hand only now: rehash it (outside any transaction).
            params = {"customer": account.customer_id, "old": password_hash}
            self._run(_REHASH, params | {"new": self.passwords.hash(password)})
        return tokens

    def renew(self, refresh_token: str) -> Tokens | None:
        """New tokens for the session `refresh_token` belongs to, which then stops working,
        as does its access token; None when it is unknown, expired or ended. The refresh
        token the session had before, presented again, ends the session (it was copied)."""
        access, refresh = _new_token(), _new_token()
        old = token_digest(refresh_token)
        renewed = self._run(
            _RENEW,
            {
                "old": old,
                "access": token_digest(access),
                "refresh": token_digest(refresh),
                "access_ttl": self.access_ttl,
                "refresh_ttl": self.refresh_ttl,
            },
        )
        if renewed is None:
            self._revoked(self._all(_END_REPLAYED, {"old": old}))
            return None
        self._revoked([renewed])
        return Tokens(renewed.customer_id, access, refresh, self.access_ttl, self.refresh_ttl)

    def sign_out(self, access_token: str) -> None:
        """End the session `access_token` belongs to: both its tokens stop working now."""
        self._revoked(self._all(_END, {"access": token_digest(access_token)}))

    def change_password(
        self, customer_id: str, access_token: str, current: str, new: str
    ) -> PasswordChange:
        """Replace the customer's password when `current` is it, and end every session of
        theirs but the one of `access_token` (whoever knew the old password is out)."""
        old_hash = self._password_of(customer_id)
        if not self.passwords.matches(old_hash, current):
            return PasswordChange.WRONG_PASSWORD
        new_hash = self.passwords.hash(new)
        with self.engine.begin() as conn:
            params = {"customer": customer_id, "old": old_hash, "new": new_hash}
            if conn.execute(_SET_PASSWORD, params).rowcount != 1:
                return PasswordChange.RACED
            keep = token_digest(access_token)
            ended = conn.execute(_END_OTHERS, {"customer": customer_id, "keep": keep}).all()
        self._revoked(ended)
        return PasswordChange.CHANGED

    def forget_ended_sessions(
        self, kept_for: float = ENDED_SESSIONS_KEPT, batch: int = 1000
    ) -> int:
        """Delete up to `batch` sessions that ended (or whose refresh token expired) more
        than `kept_for` seconds ago; returns how many (the periodic sweep calls it)."""
        found = self._run(_FORGET, {"kept_for": kept_for, "batch": batch})
        return 0 if found is None else int(found.forgotten)

    def _password_of(self, customer_id: str) -> str | None:
        found = self._run(_PASSWORD_OF, {"customer": customer_id})
        return None if found is None or found.password_hash is None else str(found.password_hash)

    def _open(self, customer_id: str, checked: str | None) -> Tokens | None:
        access, refresh = _new_token(), _new_token()
        opened = self._run(
            _OPEN,
            {
                "session": uuid.uuid4(),
                "customer": customer_id,
                "checked": checked,
                "access": token_digest(access),
                "refresh": token_digest(refresh),
                "access_ttl": self.access_ttl,
                "refresh_ttl": self.refresh_ttl,
            },
        )
        if opened is None:
            return None
        return Tokens(customer_id, access, refresh, self.access_ttl, self.refresh_ttl)

    def _revoked(self, ended: Sequence[Row[Any]]) -> None:
        """Tell the session cache about sessions whose access tokens just stopped working
        (rows of `access_hash`, or `replaced_access_hash` for a renewal)."""
        if self.cache and ended:
            self.cache.revoke([row[-1] for row in ended])

    def _run(self, statement: TextClause, params: dict[str, object]) -> Row[Any] | None:
        """The first row of one statement run as a transaction of its own (autocommit: no
        BEGIN and COMMIT round trips for a single statement)."""
        with self.engine.connect() as conn, autocommit(conn):
            return conn.execute(statement, params).first()

    def _all(self, statement: TextClause, params: dict[str, object]) -> Sequence[Row[Any]]:
        """Every row of one statement run as a transaction of its own."""
        with self.engine.connect() as conn, autocommit(conn):
            return conn.execute(statement, params).all()


def _new_token() -> str:
    return secrets.token_urlsafe(32)
