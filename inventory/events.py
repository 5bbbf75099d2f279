"""Events of this context (filled in by the write-side work)."""

from kernel.messages import Event

EVENTS: tuple[type[Event], ...] = ()
