"""A material may be linked to an activity of an existing Brightway project by key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 01:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("material", sa.Column("brightway_database", sa.String(length=200), nullable=True))
    op.add_column("material", sa.Column("brightway_code", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("material", "brightway_code")
    op.drop_column("material", "brightway_database")
