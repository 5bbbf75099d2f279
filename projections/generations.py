"""Which generation of each read model queries read, which one a rebuild fills, and the
version of the read model's code each was built with.

A rebuild replays the log from the start into generation N + 1 while queries
keep reading generation N; once N + 1 has caught up, one UPDATE switches them.

Each read model declares a version (`VERSION` in its module), bumped whenever a change
of its handlers or tables changes what it stores. A worker whose code declares a newer
version than the active generation's starts a rebuild (`upgrade`); code never writes a
generation built with a newer version than its own (`Generations.writable`), so during a
rolling deploy old workers leave the new generation alone. A read model without a row
has never run (migration 0010 recorded every one that had): the first process to record
it states its own code's version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, text

from kernel import driver
from kernel.errors import Retired

OPERATOR = "operator"
"""The reason of a rebuild asked for by a person (admin API, dashboard, `shop` command)."""


def version_change(old: int, new: int) -> str:
    """The reason of a rebuild started because the code's version changed."""
    return f"version {old} -> {new}"


@dataclass(frozen=True, slots=True)
class Build:
    """With which version of the read model's code a generation is built, and why."""

    version: int
    reason: str | None  # OPERATOR or version_change(...); None: the read model's first
    requested_by: str | None  # the operator's way in and name, or the worker (host:pid)


@dataclass(frozen=True, slots=True)
class Generations:
    active: int
    building: int | None
    built: Build | None = None  # the active generation's; None: not recorded yet
    rebuild: Build | None = None  # the building generation's
    rebuild_started_at: datetime | None = None

    def writable(self, version: int) -> list[int]:
        """The live generations that code declaring `version` may apply events to: each
        one not built with a newer version. An older one (the active generation while
        its replacement is built) is fed on until the switch, so queries stay fresh."""
        found = []
        if self.built is None or self.built.version <= version:
            found.append(self.active)
        if self.building is not None and (self.rebuild is None or self.rebuild.version <= version):
            found.append(self.building)
        return found


class OlderCode(Exception):
    """An operator's rebuild would go back to an older version of the read model."""


_COLUMNS = """
    name, active, building, version, reason, requested_by,
    coalesce(building_version, 1), building_reason, building_requested_by, rebuild_started_at
"""
# A rebuild started by code from before versions has no building_version: version 1.


# Read by every command that writes a synchronous read model, so on the driver: without
# SQLAlchemy's result machinery (see kernel.driver).
_READ = text(f"SELECT {_COLUMNS} FROM projection_generations WHERE name = :name")


def read(conn: Connection, name: str) -> Generations:
    rows = driver.fetch(conn, _READ, {"name": name})
    return _generations(rows[0]) if rows else Generations(1, None)


def read_all(conn: Connection) -> dict[str, Generations]:
    """Every recorded read model's generations (one without a row has generation 1 only)."""
    rows = conn.execute(text(f"SELECT {_COLUMNS} FROM projection_generations")).all()
    return {row[0]: _generations(row) for row in rows}


def _generations(row: Row[Any] | tuple[Any, ...]) -> Generations:
    _, active, building, version, reason, by, b_version, b_reason, b_by, started = tuple(row)
    return Generations(
        active,
        building,
        Build(version, reason, by),
        Build(b_version, b_reason, b_by) if building is not None else None,
        started,
    )


def start_rebuild(conn: Connection, name: str, build: Build, *, allow_older: bool = False) -> int:
    """The generation to build with `build` (its version is the asking code's); a rebuild
    already under way is reused. Raises OlderCode if the active generation was built with
    a newer version, unless `allow_older` (rolling a release back)."""
    conn.execute(
        text(
            "INSERT INTO projection_generations (name, active, version) VALUES (:name, 1, :v)"
            " ON CONFLICT (name) DO NOTHING"
        ),
        {"name": name, "v": build.version},
    )
    current = lock(conn, name)
    if current.building is not None:
        return current.building
    assert current.built is not None
    if current.built.version > build.version and not allow_older:
        raise OlderCode(
            f"{name}'s generation {current.active} was built with version"
            f" {current.built.version}; this code is version {build.version}"
        )
    conn.execute(
        text(
            """
            UPDATE projection_generations SET building = active + 1, rebuild_started_at = now(),
                building_version = :v, building_reason = :reason, building_requested_by = :by
            WHERE name = :name
            """
        ),
        {"name": name, "v": build.version, "reason": build.reason, "by": build.requested_by},
    )
    return current.active + 1


_UPGRADE = text(
    """
    INSERT INTO projection_generations AS g (name, active, version) VALUES (:name, 1, :v)
    ON CONFLICT (name) DO UPDATE
    SET building = g.active + 1, rebuild_started_at = now(), building_version = :v,
        building_reason = format('version %s -> %s', g.version, CAST(:v AS integer)),
        building_requested_by = :by
    WHERE g.building IS NULL AND g.version < :v
    RETURNING building
    """
)


def upgrade(conn: Connection, name: str, version: int, requested_by: str) -> int | None:
    """Start a rebuild with `version` if the active generation was built with an older one
    and no rebuild is under way; returns the generation to build, or None. One statement,
    so of any number of processes racing, one starts it: the others' conditions are
    checked again on the row it updated. A read model not recorded yet is recorded as
    built with `version` (its first generation is being built by this code)."""
    found = conn.execute(_UPGRADE, {"name": name, "v": version, "by": requested_by}).first()
    return None if found is None or found[0] is None else int(found[0])


def switch(conn: Connection, name: str, generation: int) -> int | None:
    """Make `generation` the one queries read, with its build; returns the retired one."""
    retired = conn.execute(
        text(
            """
            UPDATE projection_generations AS g SET active = g.building, building = NULL,
                rebuild_started_at = NULL, version = coalesce(g.building_version, 1),
                reason = g.building_reason, requested_by = g.building_requested_by,
                building_version = NULL, building_reason = NULL, building_requested_by = NULL
            FROM (SELECT active FROM projection_generations WHERE name = :name FOR UPDATE) AS old
            WHERE g.name = :name AND g.building = :generation
            RETURNING old.active
            """
        ),
        {"name": name, "generation": generation},
    ).scalar()
    return None if retired is None else int(retired)


def lock(conn: Connection, name: str) -> Generations:
    """The read model's generations, locked until the transaction ends (a switch's view)."""
    row = conn.execute(
        text(f"SELECT {_COLUMNS} FROM projection_generations WHERE name = :name FOR UPDATE"),
        {"name": name},
    ).first()
    return _generations(row) if row else Generations(1, None)


def ensure_live(conn: Connection, name: str, generation: int) -> None:
    """Raise Retired if a rebuild has replaced `generation` (generations above the
    active one are rebuilds or scratch copies, and stay writable)."""
    if generation < read(conn, name).active:
        raise Retired(f"{name}@{generation} was replaced by a rebuild")
