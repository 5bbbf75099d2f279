"""Which generation of each read model queries read, and which one a rebuild fills.

A rebuild replays the log from the start into generation N + 1 while queries
keep reading generation N; once N + 1 has caught up, one UPDATE switches them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from kernel.errors import Retired


@dataclass(frozen=True, slots=True)
class Generations:
    active: int
    building: int | None


def read(conn: Connection, name: str) -> Generations:
    row = conn.execute(
        text("SELECT active, building FROM projection_generations WHERE name = :name"),
        {"name": name},
    ).first()
    return Generations(row[0], row[1]) if row else Generations(1, None)


def start_rebuild(conn: Connection, name: str) -> int:
    """The generation to build; a rebuild already under way is reused."""
    row = conn.execute(
        text(
            """
            INSERT INTO projection_generations (name, active, building, rebuild_started_at)
            VALUES (:name, 1, 2, now())
            ON CONFLICT (name) DO UPDATE
            SET building = coalesce(projection_generations.building,
                                    projection_generations.active + 1),
                rebuild_started_at = CASE WHEN projection_generations.building IS NULL
                    THEN now() ELSE projection_generations.rebuild_started_at END
            RETURNING building
            """
        ),
        {"name": name},
    ).scalar_one()
    return int(row)


def switch(conn: Connection, name: str, generation: int) -> int | None:
    """Make `generation` the one queries read; returns the retired generation."""
    retired = conn.execute(
        text(
            """
            UPDATE projection_generations AS g SET active = g.building, building = NULL,
                rebuild_started_at = NULL
            FROM (SELECT active FROM projection_generations WHERE name = :name FOR UPDATE) AS old
            WHERE g.name = :name AND g.building = :generation
            RETURNING old.active
            """
        ),
        {"name": name, "generation": generation},
    ).scalar()
    return None if retired is None else int(retired)


def ensure_live(conn: Connection, name: str, generation: int) -> None:
    """Raise Retired if a rebuild has replaced `generation` (generations above the
    active one are rebuilds or scratch copies, and stay writable)."""
    if generation < read(conn, name).active:
        raise Retired(f"{name}@{generation} was replaced by a rebuild")
