"""Turn message dataclasses into JSON-ready dicts and back, guided by their type hints.

Messages hold only JSON-friendly values (str, int, bool, None), string enums,
nested frozen dataclasses, tuples/lists and dicts, so the codec stays small and
predictable.
Every event read or written passes through here, so the walk over a class's
fields is worked out once per class and kept (`_fields_of`, `_decoder`) rather
than redone by reflection for every message.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Convert = Callable[[Any], Any]

_PLAIN = frozenset({str, int, bool, float, type(None)})


def to_data(message: Any) -> dict[str, Any]:
    data: dict[str, Any] = _encode(message)
    return data


def from_data(cls: type[T], data: dict[str, Any]) -> T:
    decode: Callable[[dict[str, Any]], T] = _decoder(cls)  # type: ignore[arg-type]  # hashable
    return decode(data)


def _encode(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is tuple or kind is list:
        return [_encode(item) for item in value]
    if kind is dict:
        return {key: _encode(item) for key, item in value.items()}
    names = _fields_of(kind)  # type: ignore[arg-type]  # classes are hashable
    if names is None:
        return value.value if isinstance(value, enum.Enum) else value
    return {name: _encode(getattr(value, name)) for name in names}


@functools.cache
def _fields_of(kind: type[Any]) -> tuple[str, ...] | None:
    """The field names of a dataclass, None for any other type."""
    if not dataclasses.is_dataclass(kind):
        return None
    return tuple(f.name for f in dataclasses.fields(kind))


@functools.cache
def _decoder(cls: type[Any]) -> Callable[[dict[str, Any]], Any]:
    """A function building `cls` from its stored dict, with one converter per field."""
    hints = typing.get_type_hints(cls)
    fields = [(f.name, _converter(hints[f.name])) for f in dataclasses.fields(cls) if f.init]

    names = {name for name, _ in fields}
    converting = [(name, convert) for name, convert in fields if convert is not _identity]

    def decode(data: dict[str, Any] | None) -> Any:
        if data is None:
            return None
        if data.keys() == names:  # the usual case: exactly the class's fields
            if not converting:
                return cls(**data)
            return cls(**{**data, **{name: convert(data[name]) for name, convert in converting}})
        # An older or newer payload: missing fields keep their defaults, unknown ones go.
        return cls(**{name: convert(data[name]) for name, convert in fields if name in data})

    return decode


def _converter(hint: Any) -> Convert:
    """How to turn a stored value into the field's type (identity for plain values)."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        item = _converter(typing.get_args(hint)[0])
        return _optional(lambda value: tuple(item(v) for v in value))
    if origin is list:
        item = _converter(typing.get_args(hint)[0])
        return _optional(lambda value: [item(v) for v in value])
    if origin is dict:
        item = _converter(typing.get_args(hint)[1])
        return _optional(lambda value: {k: item(v) for k, v in value.items()})
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _converter(options[0]) if len(options) == 1 else _identity
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _optional(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _decoder(hint)
    return _identity


def _optional(convert: Convert) -> Convert:
    return lambda value: None if value is None else convert(value)


def _identity(value: Any) -> Any:
    return value
