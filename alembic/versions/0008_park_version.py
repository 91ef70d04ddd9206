"""Park versions for the response cache: a counter per park advanced by triggers on every write.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 03:40:00

Creates ``park_version`` and, on every table present at this revision except those in
``mfa.models.version.UNVERSIONED``, the triggers that advance the version of the parks a
write touches (rules in ``mfa.models.version``). Parks that already exist start at version 1
and the catalogue (row 0) too. A later revision that adds a table must create its triggers
with ``version_trigger_ddl`` (a test checks every table carries them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mfa.models import metadata
from mfa.models.version import drop_ddl, install_ddl, versioned_tables

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tables() -> list[sa.Table]:
    """The tables at this revision, reflected (column names and foreign keys are all the
    triggers need); in offline (--sql) mode, with no database to reflect, the models'."""
    if op.get_context().as_sql:
        return versioned_tables(metadata.tables.values())
    reflected = sa.MetaData()
    reflected.reflect(bind=op.get_bind())
    return versioned_tables(reflected.tables.values())


def upgrade() -> None:
    op.create_table(
        "park_version",
        sa.Column("park_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("park_id"),
    )
    op.execute("INSERT INTO park_version (park_id, version) SELECT id, 1 FROM park")
    op.execute("INSERT INTO park_version (park_id, version) VALUES (0, 1)")
    for statement in install_ddl(_tables(), op.get_context().dialect.name):
        op.execute(sa.DDL(statement))


def downgrade() -> None:
    names = [t.name for t in _tables()]
    for statement in drop_ddl(names, op.get_context().dialect.name):
        op.execute(sa.DDL(statement))
    op.drop_table("park_version")
