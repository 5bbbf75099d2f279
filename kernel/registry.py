"""Which event classes exist, and how old stored payloads become current ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kernel.codec import from_data, to_data
from kernel.errors import UnknownEventType
from kernel.messages import Event
from kernel.personal_data import check_declaration, opened_payload

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class EventRegistry:
    """Maps stored type names to event classes and runs upcasters on read.

    An upcaster registered for (type, version N) turns a payload stored at
    schema version N into version N + 1; they chain up to the class's current
    `schema_version`.
    """

    def __init__(self) -> None:
        self._classes: dict[str, type[Event]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, *event_classes: type[Event]) -> None:
        for cls in event_classes:
            known = self._classes.get(cls.__name__)
            if known is not None and known is not cls:
                raise ValueError(f"two event classes are named {cls.__name__}")
            check_declaration(cls)
            self._classes[cls.__name__] = cls

    def add_upcaster(self, type_name: str, from_version: int, upcaster: Upcaster) -> None:
        key = (type_name, from_version)
        if key in self._upcasters:
            raise ValueError(f"an upcaster for {type_name} v{from_version} exists already")
        self._upcasters[key] = upcaster

    def upcaster(self, type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        def decorate(fn: Upcaster) -> Upcaster:
            self.add_upcaster(type_name, from_version, fn)
            return fn

        return decorate

    def knows(self, type_name: str) -> bool:
        return type_name in self._classes

    def encode(self, event: Event) -> tuple[str, int, dict[str, Any]]:
        """(type name, schema version, payload) to store."""
        name = type(event).__name__
        if name not in self._classes:
            raise UnknownEventType(name)
        return name, event.schema_version, to_data(event)

    def upcast(self, type_name: str, schema_version: int, data: dict[str, Any]) -> dict[str, Any]:
        """The payload in the current shape of its type."""
        cls = self._class(type_name)
        version = schema_version
        while version < cls.schema_version:
            step = self._upcasters.get((type_name, version))
            if step is None:
                raise UnknownEventType(f"no upcaster for {type_name} v{version}")
            data = step(data)
            version += 1
        return data

    def opened(self, type_name: str, data: dict[str, Any], key: bytes | None) -> dict[str, Any]:
        """The stored payload with its personal fields opened with `key`, or erased without
        one (see kernel.personal_data). Upcasters see payloads opened."""
        return opened_payload(self._class(type_name), data, key)

    def read(
        self, type_name: str, schema_version: int, data: dict[str, Any], key: bytes | None = None
    ) -> Event:
        """The event stored as `data` at `schema_version`, opened with `key` (personal
        fields erased without it), upcast and decoded."""
        opened = self.opened(type_name, data, key)
        return self.decode(type_name, self.upcast(type_name, schema_version, opened))

    def decode(self, type_name: str, data: dict[str, Any]) -> Event:
        """Build the event from an already upcast payload."""
        return from_data(self._class(type_name), data)

    def _class(self, type_name: str) -> type[Event]:
        try:
            return self._classes[type_name]
        except KeyError:
            raise UnknownEventType(type_name) from None
