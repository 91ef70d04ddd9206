"""Flows may carry their invoiced value and currency (economic allocation in the LCA).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 01:00:00

Plain ``ADD COLUMN`` / ``DROP COLUMN`` on both databases (no batch table copy on SQLite), so
the append-only triggers on ``flow`` stay in place. That value and currency come together is
checked by the ledger when a flow is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("flow", sa.Column("value", sa.Float(), nullable=True))
    op.add_column("flow", sa.Column("currency", sa.String(length=3), nullable=True))


def downgrade() -> None:
    op.drop_column("flow", "currency")
    op.drop_column("flow", "value")
