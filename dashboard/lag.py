"""Lag over time: a short list of samples per subscription, kept in Redis.

A sample is taken whenever the projections page or `/metrics` is read (at most
one per subscription every `every` seconds, whoever reads), so the sparkline
shows lag at the moments someone looked, not a continuous series. It is
best effort: when Redis is away the page simply shows no sparkline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger("dashboard.lag")

KEY = "shop:dashboard:lag:"


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # unix time
    lag_events: int
    lag_seconds: float


class LagSamples:
    def __init__(self, redis: Redis, *, keep: int = 60, every: float = 2.0) -> None:
        self.redis = redis
        self.keep = keep
        self.every_ms = max(1, int(every * 1000))

    def record(self, lags: Mapping[str, tuple[int, float]]) -> None:
        """Add a sample (lag in events, in seconds) per subscription, unless one is recent."""
        now = time.time()
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for name in lags:
                    pipe.set(f"{KEY}{name}:recent", 1, nx=True, px=self.every_ms)
                due = [name for name, fresh in zip(lags, pipe.execute(), strict=True) if fresh]
                for name in due:
                    events, seconds = lags[name]
                    pipe.lpush(f"{KEY}{name}", f"{now:.3f} {events} {seconds:.3f}")
                    pipe.ltrim(f"{KEY}{name}", 0, self.keep - 1)
                if due:
                    pipe.execute()
        except RedisError as error:
            log.debug("could not sample lag", extra={"error": str(error)})

    def read(self, names: Iterable[str]) -> dict[str, list[Sample]]:
        """Each subscription's samples, oldest first (empty when Redis is away)."""
        names = list(names)
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.lrange(f"{KEY}{name}", 0, self.keep - 1)
                replies = pipe.execute()
        except RedisError as error:
            log.debug("could not read lag samples", extra={"error": str(error)})
            return {name: [] for name in names}
        return {name: _parse(reply) for name, reply in zip(names, replies, strict=True)}


def _parse(raw: list[bytes]) -> list[Sample]:
    samples = []
    for entry in reversed(raw):
        at, events, seconds = entry.decode().split()
        samples.append(Sample(float(at), int(events), float(seconds)))
    return samples
