"""Live customer sessions remembered in Redis for a few seconds, so that a request's
access token costs one Redis GET instead of a pooled PostgreSQL connection and a query.

PostgreSQL (`customer_sessions`) stays the authority; the cache only ever answers from
what it read there, and every way a session ends writes a tombstone here after it ended
there:

- `shop:session:<digest>` holds the customer id while the session is live, for at most
  `SECONDS` and never past the access token's expiry (the TTL is the time it has left,
  as PostgreSQL counts it), or `-` (a tombstone) for `SECONDS` after it was revoked.
- A lookup that found a live session stores it only if the key is absent (SET NX), so a
  lookup that read the session just before it was revoked cannot overwrite the tombstone
  written just after.
- `shop:sessions-of:<customer>` lists the cached digests of a customer, for what ends
  all their sessions at once (erasure).

When Redis fails, lookups fall back to PostgreSQL; a tombstone that could not be written
leaves a revoked token working for at most `SECONDS`, which is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from redis import Redis
from redis.exceptions import RedisError

from kernel.event_store import RecordedEvent
from orders.events import CustomerForgotten

SECONDS = 30
"""How long a session is remembered, and so the longest a revocation whose tombstone
Redis failed to take stays unnoticed."""

REVOKED = "-"

log = logging.getLogger(__name__)


def _session_key(digest: bytes) -> str:
    return f"shop:session:{digest.hex()}"


def _customer_key(customer_id: str) -> str:
    return f"shop:sessions-of:{customer_id}"


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode()


class SessionCache:
    def __init__(self, redis: Redis, seconds: int = SECONDS) -> None:
        self.redis = redis
        self.seconds = seconds

    def lookup(self, digest: bytes) -> str | None:
        """The customer id of a live session, REVOKED, or None when nothing is known
        (not cached, expired, or Redis unreachable: ask PostgreSQL)."""
        try:
            found = self.redis.get(_session_key(digest))
        except RedisError:
            log.warning("session cache unreachable; looking the token up in PostgreSQL")
            return None
        return None if found is None else _text(found)

    def remember(self, digest: bytes, customer_id: str, live_for: float) -> None:
        """Keep a live session for at most `SECONDS`, never past its `live_for` seconds."""
        milliseconds = int(min(self.seconds, live_for) * 1000)
        if milliseconds <= 0:
            return
        customer = _customer_key(customer_id)
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(_session_key(digest), customer_id, px=milliseconds, nx=True)
                pipe.sadd(customer, digest.hex())
                pipe.expire(customer, self.seconds)
                pipe.execute()
        except RedisError:
            log.warning("session cache unreachable; the session is not remembered")

    def revoke(self, digests: Collection[bytes]) -> None:
        """Tombstones for sessions that just ended in PostgreSQL."""
        self._tombstone([_session_key(digest) for digest in digests])

    def revoke_customer(self, customer_id: str) -> None:
        """Tombstones for every cached session of a customer whose sessions all ended."""
        try:
            members = self.redis.smembers(_customer_key(customer_id))
        except RedisError:
            log.error("session cache unreachable: sessions of a customer stay cached")
            return
        self._tombstone([f"shop:session:{_text(member)}" for member in members])

    def after_commit(self, recorded: Sequence[RecordedEvent]) -> None:
        """The command bus's after-commit listener: an erased customer's sessions were
        deleted with their account, so none of their tokens may work on from here."""
        for event in recorded:
            if event.type == CustomerForgotten.__name__:
                self.revoke_customer(str(event.data["customer_id"]))

    def _tombstone(self, keys: list[str]) -> None:
        if not keys:
            return
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(key, REVOKED, ex=self.seconds)
                pipe.execute()
        except RedisError:
            log.error(
                "session cache unreachable: %d revoked session(s) may work for up to %d s",
                len(keys),
                self.seconds,
            )
