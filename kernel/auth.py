"""Bearer credentials: signed customer tokens and the operator's admin token."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class AuthError(Exception):
    """The credential is missing, malformed, forged or expired."""


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "customer" or "admin"
    customer_id: str | None = None

    @property
    def actor(self) -> str:
        return f"customer:{self.customer_id}" if self.customer_id else self.kind


class Authenticator:
    """Issues customer tokens and verifies any bearer token without a lookup.

    Customer tokens are signed with the secret key and expire after `ttl_seconds`;
    the admin token is compared in constant time.
    """

    def __init__(self, secret_key: str, admin_token: str, ttl_seconds: int) -> None:
        self._signer = URLSafeTimedSerializer(secret_key, salt="customer-token")
        self._admin_token = admin_token
        self.ttl_seconds = ttl_seconds

    def issue(self, customer_id: str) -> str:
        return str(self._signer.dumps({"sub": customer_id}))

    def verify(self, token: str) -> Principal:
        if hmac.compare_digest(token.encode(), self._admin_token.encode()):
            return Principal("admin")
        try:
            claims = self._signer.loads(token, max_age=self.ttl_seconds)
        except SignatureExpired:
            raise AuthError("the token has expired") from None
        except BadSignature:
            raise AuthError("the token is not valid") from None
        if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
            raise AuthError("the token is not valid")
        return Principal("customer", claims["sub"])
