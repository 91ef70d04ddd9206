"""Import jobs (ERP files on their way into the ledger) and the natural keys of imported
movements, unique per reporting enterprise and ERP so that no movement is recorded twice.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 03:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUS = sa.Enum(
    "pending",
    "running",
    "validated",
    "succeeded",
    "failed",
    name="importstatus",
    native_enum=False,
    length=32,
)


def upgrade() -> None:
    op.create_table(
        "import_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("park_id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=True),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_hash", sa.String(length=64), nullable=False),
        sa.Column("file_size", sa.Integer(), nullable=False),
        sa.Column("stored_path", sa.String(length=1000), nullable=False),
        sa.Column("encoding", sa.String(length=32), nullable=True),
        sa.Column("sheet", sa.String(length=100), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("good_rows_only", sa.Boolean(), nullable=False),
        sa.Column("status", _STATUS, nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.Column("rows_ignored", sa.Integer(), nullable=False),
        sa.Column("rows_already_imported", sa.Integer(), nullable=False),
        sa.Column("flows_recorded", sa.Integer(), nullable=False),
        sa.Column("flows_linked", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("message", sa.String(length=2000), nullable=True),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["record_batch.id"]),
        sa.ForeignKeyConstraint(["enterprise_id"], ["park_node.id"]),
        sa.ForeignKeyConstraint(["park_id"], ["park.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key", name="uq_import_job_idempotency_key"),
    )
    op.create_index("ix_import_job_park_id", "import_job", ["park_id"], unique=False)
    op.create_table(
        "imported_movement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reporting_party_id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=32), nullable=False),
        sa.Column("natural_key", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.String(length=16), nullable=False),
        sa.Column("flow_id", sa.Integer(), nullable=False),
        sa.Column("confirmation_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["confirmation_id"], ["flow_confirmation.id"]),
        sa.ForeignKeyConstraint(["flow_id"], ["flow.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["import_job.id"]),
        sa.ForeignKeyConstraint(["reporting_party_id"], ["park_node.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "reporting_party_id", "system", "natural_key", name="uq_imported_movement_key"
        ),
    )
    op.create_index("ix_imported_movement_job_id", "imported_movement", ["job_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_imported_movement_job_id", table_name="imported_movement")
    op.drop_table("imported_movement")
    op.drop_index("ix_import_job_park_id", table_name="import_job")
    op.drop_table("import_job")
