"""Passwords and the digests accounts and sessions are looked up by: pure functions and
argon2 itself, no database."""

from __future__ import annotations

import time

from argon2 import PasswordHasher

from kernel.auth import token_digest
from orders.accounts import email_digest
from orders.passwords import Passwords

# The cheapest argon2id argon2-cffi allows: these tests check logic, not cost.
FAST = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def test_a_password_matches_its_own_hash_only() -> None:
    hashed = FAST.hash("correct horse battery staple")

    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert FAST.matches(hashed, "correct horse battery staple")
    assert not FAST.matches(hashed, "correct horse battery stapl")
    assert not FAST.matches(hashed, " correct horse battery staple")  # never trimmed


def test_the_same_password_hashes_differently_each_time() -> None:
    assert FAST.hash("same password") != FAST.hash("same password")  # salted


def test_no_hash_or_a_malformed_one_matches_nothing() -> None:
    assert not FAST.matches(None, "anything at all")
    assert not FAST.matches("not an argon2 hash", "anything at all")


def test_checking_against_no_hash_costs_what_a_wrong_password_costs() -> None:
    """With the default cost, an unknown email takes an argon2 verification too."""
    passwords = Passwords()
    hashed = passwords.hash("correct horse battery staple")
    passwords.matches(None, "warm-up")  # the decoy hash is made once, on first use

    def seconds(password_hash: str | None) -> float:
        started = time.perf_counter()
        passwords.matches(password_hash, "a wrong password")
        return time.perf_counter() - started

    wrong, unknown = min(seconds(hashed) for _ in range(3)), min(seconds(None) for _ in range(3))
    assert unknown > wrong / 3  # the same work, give or take a busy machine


def test_emails_are_digested_as_normalised() -> None:
    assert email_digest("  Ada@Example.COM ") == email_digest("ada@example.com")
    assert email_digest("ada@example.com") != email_digest("grace@example.com")
    assert len(email_digest("ada@example.com")) == 32  # SHA-256, not the address


def test_tokens_are_digested_as_they_are() -> None:
    assert token_digest("abc") != token_digest("ABC")
    assert len(token_digest("abc")) == 32
