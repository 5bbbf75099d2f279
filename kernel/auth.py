"""Bearer credentials: customers' session tokens and the operator's admin token."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Protocol


class AuthError(Exception):
    """The credential is missing, malformed, forged or expired."""


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "customer" or "admin"
    customer_id: str | None = None

    @property
    def actor(self) -> str:
        return f"customer:{self.customer_id}" if self.customer_id else self.kind


class CustomerTokens(Protocol):
    """Where customer access tokens are looked up (the orders context keeps the sessions;
    config wires them in): the kernel knows no more of them than this."""

    def customer_for(self, token: str) -> str:
        """The id of the customer whose live session `token` is the access token of;
        AuthError when it is no such token, or its session expired or was ended."""
        ...


class Authenticator:
    """Verifies any bearer token: the admin token, compared in constant time, or a
    customer's access token, looked up in `customer_tokens` (revocable, expiring)."""

    def __init__(self, admin_token: str, customer_tokens: CustomerTokens) -> None:
        self._admin_token = admin_token
        self._customer_tokens = customer_tokens

    def verify(self, token: str) -> Principal:
        if hmac.compare_digest(token.encode(), self._admin_token.encode()):
            return Principal("admin")
        return Principal("customer", self._customer_tokens.customer_for(token))
