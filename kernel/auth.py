"""Bearer credentials: customers' session tokens, named admins' tokens and the bootstrap
admin token."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

VIEWER, OPERATOR = "viewer", "operator"
ROLES = (VIEWER, OPERATOR)  # a viewer reads; an operator also acts
BOOTSTRAP = "bootstrap"  # the admin id and login of whoever holds ADMIN_TOKEN
ADMIN_TOKEN_PREFIX = "shop_admin_"
"""How every named admin's token starts: it tells an admin token from a customer's without
a lookup (a customer token is never looked up in admin_accounts), and secret scanners can
spot one pasted where it should not be."""


class AuthError(Exception):
    """The credential is missing, malformed, forged or expired."""


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "customer" or "admin"
    customer_id: str | None = None
    admin_id: str | None = None  # an admin_accounts id, or BOOTSTRAP
    login: str | None = None
    role: str | None = None  # an admin's: VIEWER or OPERATOR

    @property
    def actor(self) -> str:
        """Who acted, as the metadata of the events a command records says."""
        if self.customer_id:
            return f"customer:{self.customer_id}"
        if self.kind == "admin" and self.admin_id:
            return f"admin:{self.admin_id}"
        return self.kind

    @property
    def may_change(self) -> bool:
        """Whether this admin may change anything (a viewer only reads)."""
        return self.kind == "admin" and self.role == OPERATOR


BOOTSTRAP_ADMIN = Principal("admin", admin_id=BOOTSTRAP, login=BOOTSTRAP, role=OPERATOR)


class AdminLookup(Protocol):
    """Where named admins are kept (kernel.admins.AdminAccounts in the shop)."""

    def by_token_digest(self, digest: bytes) -> Principal | None:
        """The enabled admin whose current token has this SHA-256 digest, else None."""


def token_digest(token: str) -> bytes:
    """What is stored of an admin token: its SHA-256 (the token itself is shown once)."""
    return hashlib.sha256(token.encode()).digest()


class CustomerTokens(Protocol):
    """Where customer access tokens are looked up (the orders context keeps the sessions;
    config wires them in): the kernel knows no more of them than this."""

    def customer_for(self, token: str) -> str:
        """The id of the customer whose live session `token` is the access token of;
        AuthError when it is no such token, or its session expired or was ended."""
        ...


class Authenticator:
    """Verifies any bearer token: the bootstrap admin token (ADMIN_TOKEN), compared in
    constant time; a named admin's token (ADMIN_TOKEN_PREFIX...), found by its digest in
    `admins`; else a customer's access token, looked up in `customer_tokens` (revocable,
    expiring). Each is one indexed lookup at most."""

    def __init__(
        self,
        admin_token: str,
        customer_tokens: CustomerTokens,
        admins: AdminLookup | None = None,
    ) -> None:
        self._admin_token = admin_token
        self._customer_tokens = customer_tokens
        self._admins = admins

    def verify(self, token: str) -> Principal:
        if hmac.compare_digest(token.encode(), self._admin_token.encode()):
            return BOOTSTRAP_ADMIN
        if token.startswith(ADMIN_TOKEN_PREFIX):
            return self._named_admin(token)
        return Principal("customer", self._customer_tokens.customer_for(token))

    def _named_admin(self, token: str) -> Principal:
        found = self._admins.by_token_digest(token_digest(token)) if self._admins else None
        if found is None:  # never issued, rotated away, or its admin disabled
            raise AuthError("the token is not valid")
        return found
