"""API clients (hashed secrets, roles), footprints shared with partners, and the audit trail.

The audit trail gets the ledger's append-only triggers (``mfa.models.guard``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 03:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from mfa.models.guard import append_only_ddl, drop_append_only_ddl

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _role() -> sa.Enum:
    return sa.Enum(
        "operator",
        "park_admin",
        "enterprise",
        "auditor",
        "partner",
        name="role",
        native_enum=False,
        length=32,
    )


def upgrade() -> None:
    op.create_table(
        "api_client",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", _role(), nullable=False),
        sa.Column("park_id", sa.Integer(), nullable=True),
        sa.Column("enterprise_id", sa.Integer(), nullable=True),
        sa.Column("secret_hash", sa.String(length=300), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(role = 'operator') = (park_id IS NULL)", name="ck_api_client_operator_parkless"
        ),
        sa.CheckConstraint(
            "(role = 'enterprise') = (enterprise_id IS NOT NULL)",
            name="ck_api_client_enterprise_node",
        ),
        sa.ForeignKeyConstraint(["enterprise_id"], ["park_node.id"]),
        sa.ForeignKeyConstraint(["park_id"], ["park.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", name="uq_api_client_client_id"),
    )
    op.create_index("ix_api_client_park_id", "api_client", ["park_id"], unique=False)
    op.create_table(
        "footprint_share",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("material_id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["park_node.id"]),
        sa.ForeignKeyConstraint(["material_id"], ["material.id"]),
        sa.ForeignKeyConstraint(["partner_id"], ["api_client.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "enterprise_id", "material_id", "partner_id", name="uq_footprint_share"
        ),
    )
    op.create_index(
        "ix_footprint_share_partner_id", "footprint_share", ["partner_id"], unique=False
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("role", _role(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("operation", sa.String(length=200), nullable=True),
        sa.Column("park_id", sa.Integer(), nullable=True),
        sa.Column("node_id", sa.Integer(), nullable=True),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_event_park_id_id", "audit_event", ["park_id", "id"], unique=False)
    # The trail is append-only like the ledger (an auditor must trust it was never edited).
    for statement in append_only_ddl(op.get_context().dialect.name, ("audit_event",)):
        op.execute(sa.DDL(statement))


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    for statement in drop_append_only_ddl(dialect, ("audit_event",), function=False):
        op.execute(sa.DDL(statement))
    op.drop_index("ix_audit_event_park_id_id", table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_index("ix_footprint_share_partner_id", table_name="footprint_share")
    op.drop_table("footprint_share")
    op.drop_index("ix_api_client_park_id", table_name="api_client")
    op.drop_table("api_client")
