"""The state this process last loaded of its hot aggregates, to load them again from.

Every reservation of a SKU loads its `StockItem`: from a snapshot (up to
SNAPSHOT_INTERVAL events old, holding every open reservation of the SKU) plus the
events after it. Kept here instead, the next load reads only the events since, under
the same stream lock, and no snapshot.

An entry is trusted only as far as the log confirms it: it names the position and the
id of the event at its version, and a load reads that event too. A state a transaction
loaded from its own writes, then rolled back, names a position no event will have
again; a log emptied or restored from a backup meanwhile may hand that position out
again, but not with that id (an event's id comes from the command that recorded it). So
either way its next load finds a mismatch and reads the stream as if nothing were kept.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Kept:
    version: int
    position: int  # of the event at `version`
    event_id: str  # and its id (its metadata's message id)
    state: dict[str, Any]  # the aggregate's snapshot_state() at `version`: never changed


class AggregateCache:
    """Kept states by stream id, the `most` most recently kept (threads share it)."""

    def __init__(self, most: int = 1024) -> None:
        self.most = most
        self._kept: dict[str, Kept] = {}
        self._lock = threading.Lock()

    def get(self, stream_id: str) -> Kept | None:
        return self._kept.get(stream_id)

    def keep(self, stream_id: str, kept: Kept) -> None:
        with self._lock:
            self._kept.pop(stream_id, None)
            if len(self._kept) >= self.most:
                self._kept.pop(next(iter(self._kept)))  # the least recently kept
            self._kept[stream_id] = kept

    def drop(self, stream_id: str) -> None:
        with self._lock:
            self._kept.pop(stream_id, None)
