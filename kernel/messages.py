"""Message bases: commands ask for a change, events record one, metadata links them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

from kernel.personal_data import PersonalFields  # the codec reads the hints at run time


@dataclass(frozen=True, slots=True)
class Command:
    """A task someone asks the system to perform, named in the imperative."""


@dataclass(frozen=True, slots=True)
class Event:
    """A fact that happened, named in the past tense.

    `schema_version` is bumped whenever the stored shape changes; an upcaster
    registered for the old version turns stored payloads into the new shape.

    `personal_fields`, when set, names the fields holding a person's data: they are
    stored sealed with that person's key (see kernel.personal_data).
    """

    schema_version: ClassVar[int] = 1
    personal_fields: ClassVar[PersonalFields | None] = None


def new_id() -> str:
    return str(uuid.uuid4())


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Metadata:
    """Who asked, and which message caused which.

    A command's metadata is propagated to the events it causes: same correlation
    id and actor, causation id = the command's message id, and, while tracing is on,
    the trace context (W3C `traceparent` and `tracestate`) of the command's span, so
    work done on an event later, in any process, joins the trace that caused it.
    Without tracing both stay None and are not stored: metadata stored before they
    existed reads back the same.
    """

    message_id: str = field(default_factory=new_id)
    correlation_id: str = ""
    causation_id: str | None = None
    actor: str = "system"
    occurred_at: datetime = field(default_factory=utc_now)
    traceparent: str | None = None
    tracestate: str | None = None

    def __post_init__(self) -> None:
        if not self.correlation_id:
            object.__setattr__(self, "correlation_id", self.message_id)

    def caused(self, message_id: str | None = None) -> Metadata:
        """Metadata for a message caused by this one."""
        return replace(
            self,
            message_id=message_id or new_id(),
            causation_id=self.message_id,
            occurred_at=utc_now(),
        )

    def to_json(self) -> dict[str, Any]:
        stored: dict[str, Any] = {
            "message_id": self.message_id,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "actor": self.actor,
            "occurred_at": self.occurred_at.isoformat(),
        }
        if self.traceparent:  # only while tracing is on: the stored shape is unchanged
            stored["traceparent"] = self.traceparent
            if self.tracestate:
                stored["tracestate"] = self.tracestate
        return stored

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Metadata:
        return cls(
            message_id=data["message_id"],
            correlation_id=data["correlation_id"],
            causation_id=data.get("causation_id"),
            actor=data.get("actor", "system"),
            occurred_at=datetime.fromisoformat(data["occurred_at"]),
            traceparent=data.get("traceparent"),
            tracestate=data.get("tracestate"),
        )
