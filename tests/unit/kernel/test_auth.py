"""Authenticator.verify is the one way a bearer token becomes a principal: the bootstrap
ADMIN_TOKEN, a named admin's (looked up by its digest, never by itself), or a signed
customer token (never looked up)."""

from __future__ import annotations

import hashlib

import pytest

from kernel.auth import (
    ADMIN_TOKEN_PREFIX,
    BOOTSTRAP_ADMIN,
    OPERATOR,
    VIEWER,
    Authenticator,
    AuthError,
    Principal,
)

NAMED = ADMIN_TOKEN_PREFIX + "a" * 43
VIC = Principal("admin", admin_id="5f0c6f5e-0000-4000-8000-000000000001", login="vic", role=VIEWER)


class Admins:
    """An AdminLookup over one admin, remembering what it was asked."""

    def __init__(self) -> None:
        self.asked: list[bytes] = []

    def by_token_digest(self, digest: bytes) -> Principal | None:
        self.asked.append(digest)
        return VIC if digest == hashlib.sha256(NAMED.encode()).digest() else None


class Customers:
    """Customer sessions holding one token, of customer c-1."""

    def customer_for(self, token: str) -> str:
        if token != "customer-token-of-c-1":
            raise AuthError("the token is not valid")
        return "c-1"


@pytest.fixture
def admins() -> Admins:
    return Admins()


@pytest.fixture
def authenticator(admins: Admins) -> Authenticator:
    return Authenticator("bootstrap-token", Customers(), admins)


def test_the_bootstrap_token_is_an_operator_recorded_as_admin_bootstrap(
    authenticator: Authenticator, admins: Admins
) -> None:
    found = authenticator.verify("bootstrap-token")
    assert found == BOOTSTRAP_ADMIN
    assert (found.actor, found.role, found.may_change) == ("admin:bootstrap", OPERATOR, True)
    assert admins.asked == []


def test_a_named_admin_is_found_by_the_digest_of_their_token(
    authenticator: Authenticator, admins: Admins
) -> None:
    found = authenticator.verify(NAMED)
    assert found == VIC
    assert found.actor == f"admin:{VIC.admin_id}" and not found.may_change
    assert admins.asked == [hashlib.sha256(NAMED.encode()).digest()]


def test_an_admin_token_no_admin_holds_is_refused(authenticator: Authenticator) -> None:
    with pytest.raises(AuthError):
        authenticator.verify(ADMIN_TOKEN_PREFIX + "b" * 43)
    with pytest.raises(AuthError):
        Authenticator("bootstrap-token", Customers()).verify(NAMED)  # no lookup at all


def test_customer_tokens_are_never_looked_up_among_admins(
    authenticator: Authenticator, admins: Admins
) -> None:
    found = authenticator.verify("customer-token-of-c-1")
    assert (found.kind, found.actor, found.may_change) == ("customer", "customer:c-1", False)
    with pytest.raises(AuthError):
        authenticator.verify("not-a-token")
    assert admins.asked == []
