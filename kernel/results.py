"""What dispatching a command returns: no read data, only the outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Success:
    """The command was applied. `consistency_token` marks the log position of its
    events; a query given it can wait until its read model has caught up."""

    aggregate_id: str
    consistency_token: str
    ok: Literal[True] = True


@dataclass(frozen=True, slots=True)
class Failure:
    """The command was refused: `code` is machine-readable, `message` is for people."""

    code: str
    message: str
    ok: Literal[False] = False


Result = Success | Failure


def result_to_json(result: Result) -> dict[str, Any]:
    if isinstance(result, Success):
        return {"ok": True, "aggregate_id": result.aggregate_id, "token": result.consistency_token}
    return {"ok": False, "code": result.code, "message": result.message}


def result_from_json(data: dict[str, Any]) -> Result:
    if data["ok"]:
        return Success(data["aggregate_id"], data["token"])
    return Failure(data["code"], data["message"])
