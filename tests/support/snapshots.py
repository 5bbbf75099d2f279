"""A snapshot's state as the event store gives it back."""

from __future__ import annotations

from typing import Any

import orjson

from kernel import jsonb


def stored(state: dict[str, Any]) -> dict[str, Any]:
    """`state` after a trip through the snapshots table: written and parsed as the store does."""
    parsed: dict[str, Any] = orjson.loads(jsonb.dumps(state))
    return parsed
