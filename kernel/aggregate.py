"""Event-sourced aggregate base: state is the fold of the aggregate's own events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Self

from kernel.messages import Event


class Aggregate:
    """Subclasses decide in command methods and change state only in `apply`.

    A decision method checks invariants and calls `record(event)`; `apply`
    (usually a `match` on the event type) folds one event into state. `version`
    counts the events already stored, so it is the expected version on save.
    """

    stream_type: ClassVar[str]
    snapshot_version: ClassVar[int] = 1
    kept_in_memory: ClassVar[bool] = False
    """Hot aggregates (loaded by many commands) set it: a process then loads one again
    from the state it last loaded, reading only the events since (kernel.aggregate_cache).
    Needs snapshots, and `from_snapshot` must copy what it keeps of the state given."""

    def __init__(self, aggregate_id: str) -> None:
        self.id = aggregate_id
        self.version = 0
        self._pending: list[Event] = []

    @classmethod
    def stream_for(cls, aggregate_id: str) -> str:
        """The stream holding this aggregate's events: ids are unique per type only."""
        return f"{cls.stream_type}-{aggregate_id}"

    @property
    def stream_id(self) -> str:
        return self.stream_for(self.id)

    @property
    def pending_events(self) -> tuple[Event, ...]:
        return tuple(self._pending)

    def record(self, event: Event) -> None:
        self.apply(event)
        self._pending.append(event)

    def apply(self, event: Event) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot apply {type(event).__name__}")

    def replay(self, events: Iterable[Event]) -> None:
        for event in events:
            self.apply(event)
            self.version += 1

    def mark_saved(self) -> None:
        self.version += len(self._pending)
        self._pending.clear()

    def snapshot_state(self) -> dict[str, Any]:
        """JSON-ready state for a snapshot; an aggregate without it always replays its stream."""
        raise NotImplementedError

    @classmethod
    def from_snapshot(cls, aggregate_id: str, version: int, state: dict[str, Any]) -> Self:
        raise NotImplementedError

    @classmethod
    def supports_snapshots(cls) -> bool:
        return cls.snapshot_state is not Aggregate.snapshot_state
