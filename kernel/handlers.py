"""Typed event handlers: one small function per event class, for every kind of reader.

A read model or a process manager keeps its handlers in one `EventHandlers`, each
function registered with `@handlers.on(SomeEvent)` and taking that event as its first
parameter. mypy checks the parameter against the class and the rest of the signature
against the reader's (`P`, the arguments every handler of the reader takes, and `R`,
what it returns), so a handler cannot be registered for the wrong event or shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from kernel.messages import Event

P = ParamSpec("P")
R = TypeVar("R")
E = TypeVar("E", bound=Event)


class EventHandlers(Generic[P, R]):
    """A reader's handlers, at most one per event class, found by the stored type name."""

    def __init__(self) -> None:
        self._by_type: dict[str, Callable[Concatenate[Any, P], R]] = {}

    def on(
        self, event_type: type[E]
    ) -> Callable[[Callable[Concatenate[E, P], R]], Callable[Concatenate[E, P], R]]:
        """Register the decorated function as the handler of `event_type`."""

        def register(handler: Callable[Concatenate[E, P], R]) -> Callable[Concatenate[E, P], R]:
            name = event_type.__name__
            if name in self._by_type:
                raise ValueError(f"{name} already has a handler here")
            self._by_type[name] = handler
            return handler

        return register

    def handles(self, type_name: str) -> bool:
        return type_name in self._by_type

    def of(self, type_name: str) -> Callable[Concatenate[Any, P], R] | None:
        """The handler of the events stored as `type_name` (for a loop over many events:
        one lookup, then a direct call); None when there is none."""
        return self._by_type.get(type_name)

    def handle(self, event: Event, *args: P.args, **kwargs: P.kwargs) -> R | None:
        """Run the handler of the event's class; None when there is none."""
        handler = self._by_type.get(type(event).__name__)
        return None if handler is None else handler(event, *args, **kwargs)

    @property
    def types(self) -> frozenset[str]:
        """The stored type names of the events handled: what the reader subscribes to."""
        return frozenset(self._by_type)
