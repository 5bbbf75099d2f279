"""Which event led to which: the order's history grouped into commands.

Every event's causation id is the id of the command that recorded it. The
commands themselves are not in the log, but the saga derives the id of each
command it issues from the id of the event it reacts to (and its index), as
docs/DESIGN.md promises, so the link event -> command -> events can be
recomputed from the history alone. A command no event caused came from a
request (its actor says whose) or from the saga's payment deadline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sagas.order_fulfillment import command_id as saga_command_id
from sagas.order_fulfillment import deadline_id

MAX_COMMANDS_PER_EVENT = 8  # the saga issues at most two today


@dataclass
class CommandNode:
    command_id: str
    actor: str
    cause: str  # "request", "event" or "deadline"
    caused_by: int | None = None  # position of the event it reacted to
    events: list[int] = field(default_factory=list)  # positions of the events it recorded


@dataclass
class Linked:
    event: dict[str, Any]
    command: CommandNode | None  # the command that recorded this event
    led_to: list[CommandNode]  # the commands issued in reaction to this event


def link(history: Sequence[dict[str, Any]], order_id: str) -> list[Linked]:
    """Each event of `history` (OrderHistory rows) with the command behind it and
    the commands (with their events) it led to."""
    commands: dict[str, CommandNode] = {}
    for event in history:
        causation = event.get("causation_id")
        if causation:
            node = commands.setdefault(causation, CommandNode(causation, event["actor"], "request"))
            node.events.append(event["position"])
    deadline = deadline_id(order_id)
    for command_id in _issued(deadline):
        if command_id in commands:
            commands[command_id].cause = "deadline"
    linked = []
    for event in history:
        led_to = []
        for command_id in _issued(event["message_id"]):
            issued = commands.get(command_id)
            if issued is not None:
                issued.cause, issued.caused_by = "event", event["position"]
                led_to.append(issued)
        linked.append(Linked(event, None, led_to))
    for entry in linked:
        causation = entry.event.get("causation_id")
        entry.command = commands.get(causation) if causation else None
    return linked


def _issued(cause_id: str) -> list[str]:
    return [saga_command_id(cause_id, index) for index in range(MAX_COMMANDS_PER_EVENT)]
