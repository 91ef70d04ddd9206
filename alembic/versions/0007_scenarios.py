"""Stored what-if scenarios: a named list of changes to one period's flows of a park.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 03:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scenario",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("park_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("period_end >= period_start", name="ck_scenario_period"),
        sa.ForeignKeyConstraint(["park_id"], ["park.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("park_id", "name", name="uq_scenario_name"),
    )
    op.create_index("ix_scenario_park_id", "scenario", ["park_id"], unique=False)
    op.create_table(
        "scenario_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scenario_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "reroute_waste",
                "solar_for_grid",
                "water_reuse",
                name="scenariochangekind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("material_id", sa.Integer(), nullable=True),
        sa.Column("partner_id", sa.Integer(), nullable=True),
        sa.Column("replaced_material_id", sa.Integer(), nullable=True),
        sa.Column("share", sa.Float(), nullable=False),
        sa.CheckConstraint("share > 0 AND share <= 1", name="ck_scenario_change_share"),
        sa.ForeignKeyConstraint(["enterprise_id"], ["park_node.id"]),
        sa.ForeignKeyConstraint(["material_id"], ["material.id"]),
        sa.ForeignKeyConstraint(["partner_id"], ["park_node.id"]),
        sa.ForeignKeyConstraint(["replaced_material_id"], ["material.id"]),
        sa.ForeignKeyConstraint(["scenario_id"], ["scenario.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scenario_id", "position", name="uq_scenario_change_position"),
    )


def downgrade() -> None:
    op.drop_table("scenario_change")
    op.drop_index("ix_scenario_park_id", table_name="scenario")
    op.drop_table("scenario")
