"""Read model versions: which version of its read model's code each generation was built
with, and why it was built.

`version`, `reason` and `requested_by` describe the active generation; `building_version`,
`building_reason` and `building_requested_by` the one a rebuild fills (NULL without one).
A reason is `operator` (asked for by the admin API, the dashboard or `shop projections
rebuild`) or `version 1 -> 2` (started by a worker whose code declares a newer version);
`requested_by` names the operator's way in and who, or the worker (host:pid).

Backfill: every generation built before this revision was built by code that declared no
version, which is version 1, the version every read model starts at. So existing rows
get version 1 (the column's default), a rebuild under way gets version 1 and the reason
`operator` (nothing else started rebuilds), and a read model that has run without ever
being rebuilt (it has no row yet: generation 1 was implied) gets a row saying generation
1, version 1; its subscription's rows for generation 1 are the evidence. A read model
with no row after this has never run: the first worker to look records the version of
its own code (see projections/generations.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE projection_generations
            ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
            ADD COLUMN reason text,
            ADD COLUMN requested_by text,
            ADD COLUMN building_version integer CHECK (building_version >= 1),
            ADD COLUMN building_reason text,
            ADD COLUMN building_requested_by text;

        UPDATE projection_generations
        SET building_version = 1, building_reason = 'operator'
        WHERE building IS NOT NULL;

        INSERT INTO projection_generations (name, active, version)
        SELECT DISTINCT split_part(name, '@', 1), 1, 1
        FROM (SELECT name FROM subscriptions UNION SELECT name FROM subscription_partitions) AS s
        WHERE split_part(name, '@', 2) = '1'
        ON CONFLICT (name) DO NOTHING;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE projection_generations
            DROP COLUMN building_requested_by,
            DROP COLUMN building_reason,
            DROP COLUMN building_version,
            DROP COLUMN requested_by,
            DROP COLUMN reason,
            DROP COLUMN version;
        """
    )
