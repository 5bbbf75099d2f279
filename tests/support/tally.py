"""A tiny event-sourced aggregate used to exercise the kernel on its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from kernel.aggregate import Aggregate
from kernel.errors import DomainError
from kernel.messages import Command, Event
from kernel.registry import EventRegistry
from kernel.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class TallyOpened(Event):
    title: str
    schema_version: ClassVar[int] = 2  # v1 called the field `name`


@dataclass(frozen=True, slots=True)
class Counted(Event):
    amount: int


class Tally(Aggregate):
    stream_type = "tally"

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.title = ""
        self.total = 0
        self.counts = 0

    @classmethod
    def open(cls, tally_id: str, title: str) -> Tally:
        tally = cls(tally_id)
        tally.record(TallyOpened(title))
        return tally

    def count(self, amount: int) -> None:
        if amount <= 0:
            raise DomainError("only positive amounts count", code="not_positive")
        self.record(Counted(amount))

    def apply(self, event: Event) -> None:
        match event:
            case TallyOpened(title=title):
                self.title = title
            case Counted(amount=amount):
                self.total += amount
                self.counts += 1
            case _:
                super().apply(event)

    def snapshot_state(self) -> dict[str, Any]:
        return {"title": self.title, "total": self.total, "counts": self.counts}

    @classmethod
    def from_snapshot(cls, aggregate_id: str, version: int, state: dict[str, Any]) -> Self:
        tally = cls(aggregate_id)
        tally.version = version
        tally.title, tally.total, tally.counts = state["title"], state["total"], state["counts"]
        return tally


@dataclass(frozen=True, slots=True)
class OpenTally(Command):
    tally_id: str
    title: str


@dataclass(frozen=True, slots=True)
class Count(Command):
    tally_id: str
    amount: int


def open_tally(command: OpenTally, uow: UnitOfWork) -> str:
    if uow.load(Tally, command.tally_id) is not None:
        raise DomainError(f"tally {command.tally_id} exists already", code="exists")
    uow.save(Tally.open(command.tally_id, command.title))
    return command.tally_id


def count(command: Count, uow: UnitOfWork) -> str:
    tally = uow.get(Tally, command.tally_id)
    tally.count(command.amount)
    uow.save(tally)
    return tally.id


def tally_registry() -> EventRegistry:
    registry = EventRegistry()
    registry.register(TallyOpened, Counted)
    registry.add_upcaster("TallyOpened", 1, lambda data: {"title": data["name"]})
    return registry
