"""Recycling-allocation (CFF) parameters per material, with per-flow overrides.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 01:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recycling_parameters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("material_id", sa.Integer(), nullable=False),
        sa.Column("flow_id", sa.Integer(), nullable=True),
        sa.Column("a", sa.Float(), nullable=False),
        sa.Column("b", sa.Float(), nullable=False),
        sa.Column("r1", sa.Float(), nullable=False),
        sa.Column("r2", sa.Float(), nullable=False),
        sa.Column("r3", sa.Float(), nullable=False),
        sa.Column("qsin_qp", sa.Float(), nullable=False),
        sa.Column("qsout_qp", sa.Float(), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["flow_id"], ["flow.id"]),
        sa.ForeignKeyConstraint(["material_id"], ["material.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_recycling_parameters_lookup",
        "recycling_parameters",
        ["material_id", "flow_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_recycling_parameters_lookup", table_name="recycling_parameters")
    op.drop_table("recycling_parameters")
