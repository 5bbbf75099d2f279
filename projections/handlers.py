"""One small function per event type, looked up by the stored type name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from kernel.messages import Event

F = TypeVar("F", bound=Callable[..., None])
E = TypeVar("E", bound=Event)


class Handlers(Generic[F]):
    """A read model's event handlers: `@handlers.on(OrderPlaced)` above each function."""

    def __init__(self) -> None:
        self._by_type: dict[str, F] = {}

    def on(self, *event_types: type[Event]) -> Callable[[F], F]:
        def register(handler: F) -> F:
            for event_type in event_types:
                if event_type.__name__ in self._by_type:
                    raise ValueError(f"{event_type.__name__} already has a handler here")
                self._by_type[event_type.__name__] = handler
            return handler

        return register

    def get(self, type_name: str) -> F | None:
        return self._by_type.get(type_name)

    def handles(self, type_name: str) -> bool:
        return type_name in self._by_type

    @property
    def types(self) -> frozenset[str]:
        return frozenset(self._by_type)
