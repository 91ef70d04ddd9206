"""Widen the flow index on (source, period start) to the whole transfer key.

Linking a transfer report to the other side's looks flows up by (source, target, material,
period start, period end); the old index found only the source's month and scanned the rest.
The new index keeps (source_id, period_start) as its prefix, so the books' reads still use it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 04:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_flow_transfer_key",
        "flow",
        ["source_id", "period_start", "target_id", "material_id", "period_end"],
    )
    op.drop_index("ix_flow_source_period", table_name="flow")


def downgrade() -> None:
    op.create_index("ix_flow_source_period", "flow", ["source_id", "period_start"])
    op.drop_index("ix_flow_transfer_key", table_name="flow")
