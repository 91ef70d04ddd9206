"""API clients and their roles, the footprints enterprises share with partners, the audit trail."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from mfa.models._types import UTC_TIMESTAMP, enum_column, utcnow


class Role(StrEnum):
    """What a client may do; the rules themselves live in ``mfa.access.authorize``.

    ``OPERATOR`` is the service itself (CLI, sample loader, jobs it runs): every park.
    ``PARK_ADMIN`` manages one park's enterprises and clients and may record for it.
    ``ENTERPRISE`` records its own flows and reads its own books.
    ``AUDITOR`` reads one park, writes nothing. ``PARTNER`` reads the product footprints shared
    with it.
    """

    OPERATOR = "operator"
    PARK_ADMIN = "park_admin"
    ENTERPRISE = "enterprise"
    AUDITOR = "auditor"
    PARTNER = "partner"


class ApiClient(SQLModel, table=True):
    """Credentials of one API client. The secret is stored as a salted scrypt hash only."""

    __tablename__ = "api_client"
    __table_args__ = (
        sa.UniqueConstraint("client_id", name="uq_api_client_client_id"),
        sa.CheckConstraint(
            "(role = 'operator') = (park_id IS NULL)", name="ck_api_client_operator_parkless"
        ),
        sa.CheckConstraint(
            "(role = 'enterprise') = (enterprise_id IS NOT NULL)",
            name="ck_api_client_enterprise_node",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=80)
    name: str = Field(max_length=200)
    role: Role = Field(sa_type=enum_column(Role))
    park_id: int | None = Field(default=None, foreign_key="park.id", index=True)
    enterprise_id: int | None = Field(default=None, foreign_key="park_node.id")
    secret_hash: str = Field(max_length=300, description="scrypt$n$r$p$salt$hash, hex.")
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTC_TIMESTAMP)


class FootprintShare(SQLModel, table=True):
    """An enterprise lets one partner client read the footprint of one of its products."""

    __tablename__ = "footprint_share"
    __table_args__ = (
        sa.UniqueConstraint(
            "enterprise_id", "material_id", "partner_id", name="uq_footprint_share"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="park_node.id")
    material_id: int = Field(foreign_key="material.id")
    partner_id: int = Field(foreign_key="api_client.id", index=True)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTC_TIMESTAMP)


class AuditEvent(SQLModel, table=True):
    """One write that committed, or one attempt that access control refused.

    ``park_id`` and ``node_id`` are what the decision concerned (no foreign keys: a refused
    attempt may name anything, and the trail must never fail to record it).
    """

    __tablename__ = "audit_event"
    __table_args__ = (sa.Index("ix_audit_event_park_id_id", "park_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTC_TIMESTAMP)
    subject: str = Field(max_length=200)
    role: Role = Field(sa_type=enum_column(Role))
    action: str = Field(max_length=32)
    operation: str | None = Field(default=None, max_length=200)
    park_id: int | None = None
    node_id: int | None = None
    allowed: bool
    reason: str | None = Field(default=None, max_length=500)
