"""Named admins in the tests: who they are and their bearer headers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from config.bootstrap import Application


@dataclass(frozen=True)
class Admin:
    admin_id: str
    login: str
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def actor(self) -> str:
        return f"admin:{self.admin_id}"


def everything(application: Application) -> dict[str, Any]:
    """What a change anywhere would show in: each table's row count, the log's head, the
    read models' generations, the sagas' states, and the job queues."""
    with application.engine.connect() as conn:
        tables = conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version' ORDER BY tablename"
            )
        ).scalars()
        state: dict[str, Any] = {
            table: conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()
            for table in tables
        }
        state["log head"] = conn.execute(text("SELECT max(position) FROM events")).scalar()
        state["generations"] = conn.execute(
            text("SELECT * FROM projection_generations ORDER BY name")
        ).all()
        state["sagas"] = conn.execute(
            text("SELECT order_id, step, updated_at FROM order_fulfillment_sagas ORDER BY 1")
        ).all()
        state["parked"] = conn.execute(
            text("SELECT subscription, key, retried_at FROM parked_keys ORDER BY 1, 2")
        ).all()
    state["queued jobs"] = sorted(
        (key.decode(), application.queues.redis.llen(key))
        for key in application.queues.redis.scan_iter(match="rq:queue:*")
    )
    return state


def event_actors(application: Application, event_type: str) -> list[str]:
    with application.engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT metadata ->> 'actor' FROM events WHERE type = :type ORDER BY position"
                ),
                {"type": event_type},
            ).scalars()
        )
