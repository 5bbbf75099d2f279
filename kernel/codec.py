"""Turn message dataclasses into JSON-ready dicts and back, guided by their type hints.

Messages hold only JSON-friendly values (str, int, bool, None), nested frozen
dataclasses, tuples/lists and dicts, so the codec stays small and predictable.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def to_data(message: Any) -> dict[str, Any]:
    data: dict[str, Any] = dataclasses.asdict(message)
    return data


def from_data(cls: type[T], data: dict[str, Any]) -> T:
    hints = _field_hints(cls)  # type: ignore[arg-type]  # classes are hashable
    kwargs = {name: _convert(hint, data[name]) for name, hint in hints.items() if name in data}
    return cls(**kwargs)


@functools.cache
def _field_hints(cls: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item, *_rest) = typing.get_args(hint)
        return tuple(_convert(item, v) for v in value)
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_convert(item, v) for v in value]
    if origin is dict:
        _key, item = typing.get_args(hint)
        return {k: _convert(item, v) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return from_data(hint, value)
    return value
