"""Customers' passwords: argon2id hashes, and checking a password against one.

Hashing is slow on purpose (about 0.1 s and 64 MiB with argon2-cffi's defaults, RFC
9106's low-memory profile): call these outside any database transaction.
"""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def matches(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` is the one `password_hash` was made from; False without a
        hash (no such account, or one without a password), after the same work."""
        try:
            verified = self._hasher.verify(password_hash or self._decoy, password)
        except (VerificationError, InvalidHashError):
            return False
        return verified and password_hash is not None

    def outdated(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than this hasher's (weaker ones,
        from before they were raised): it is to be made again at the next sign-in."""
        return self._hasher.check_needs_rehash(password_hash)

    @functools.cached_property
    def _decoy(self) -> str:
        """Checked against when there is no hash to check: an unknown email then costs as
        long as a wrong password, so timing does not tell which emails have accounts."""
        return self._hasher.hash(secrets.token_urlsafe(16))
