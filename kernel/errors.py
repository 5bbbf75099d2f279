"""Errors the kernel raises and the codes a failed command reports."""

from __future__ import annotations


class DomainError(Exception):
    """A command broke a business rule; reported to the caller as a Failure.

    `code` is machine-readable (e.g. ``order_not_cancellable``), `message` is for people.
    """

    code: str = "rejected"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(DomainError):
    code = "not_found"


class ConcurrencyError(Exception):
    """Another writer changed a stream since it was loaded; the command may be retried."""


class UnknownEventType(LookupError):
    """A stored event type that no registered event class knows."""


class DuplicateHandler(ValueError):
    """A second handler was registered for a command type."""


class NoHandler(LookupError):
    """A command was dispatched that no handler is registered for."""


class Invalid(DomainError):
    """The command is well-formed but refers to things that cannot be used (e.g. an unknown SKU)."""

    code = "invalid"


class CheckpointMoved(Exception):
    """A subscriber's stored checkpoint is not where the batch begins (its store lost
    data, or another runner wrote): nothing was written; read the checkpoint again."""


class Retired(Exception):
    """The subscriber's data was retired (e.g. a read model generation replaced by a
    rebuild): there is nothing for it to do."""


class Fenced(Exception):
    """A subscription partition's lease was lost (it expired and another holder may have
    taken it): whatever the old holder was writing must not commit."""


class ParkedKeyBusy(Exception):
    """A parked key cannot be retried or skipped now: the runner holding its partition did
    not let go in time. Trying again shortly works."""


class StillFailing(Exception):
    """A retried parked key's events failed again; the key stays parked."""
