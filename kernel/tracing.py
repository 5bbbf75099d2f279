"""Spans for work done on a message, as the contexts see tracing: a port.

Work done because of an event (the saga reacting to it, a payment call it asked for)
runs inside `Tracing.following(event's metadata, ...)`: a span whose parent is the
trace context the event carries (see `Metadata.traceparent`), current for the block,
so the commands dispatched in it join the same trace. The composition root hands in
the OpenTelemetry implementation (config.tracing) when tracing is configured, and
NO_TRACING otherwise, which costs an empty context manager per call.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

from kernel.messages import Metadata

Attributes = Mapping[str, str | int | bool]


class Tracing(Protocol):
    @property
    def enabled(self) -> bool:
        """Whether spans are made at all (lets a caller skip reading a parent's context)."""

    def following(
        self, cause: Metadata | None, name: str, attributes: Attributes
    ) -> AbstractContextManager[object]:
        """A span `name` for work done because of the message `cause`, the child of the
        trace context it carries, current inside the block; an exception leaving the
        block marks it failed. Begun inside a span of another trace (a webhook's
        request), it links that span. Without a context to follow: the current span's
        child, or else a new trace's root."""


class NoTracing:
    """Tracing off: no span, no context, nothing recorded."""

    enabled = False

    def following(
        self, cause: Metadata | None, name: str, attributes: Attributes
    ) -> AbstractContextManager[object]:
        return nullcontext()


NO_TRACING: Tracing = NoTracing()
