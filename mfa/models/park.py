"""Parks and the nodes of their flow network: enterprises inside, boundary nodes outside."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from mfa.models._types import UTC_TIMESTAMP, enum_column, utcnow


class NodeKind(StrEnum):
    """What a node of the park's flow network is.

    ``ENTERPRISE`` lies inside the park and keeps books; every other kind is a boundary node,
    so that every flow, including a purchase or a landfilled waste, has a source and a target.
    """

    ENTERPRISE = "enterprise"
    SUPPLIER = "supplier"
    CUSTOMER = "customer"
    LANDFILL = "landfill"
    INCINERATION = "incineration"
    WASTEWATER_TREATMENT = "wastewater_treatment"
    ATMOSPHERE = "atmosphere"
    GRID = "grid"
    RECYCLER = "recycler"

    @property
    def is_boundary(self) -> bool:
        return self is not NodeKind.ENTERPRISE


class ParkBase(SQLModel):
    code: str = Field(max_length=64, description="Short stable identifier, e.g. 'amata-dn'.")
    name: str = Field(max_length=200)
    country: str = Field(max_length=2, description="ISO 3166-1 alpha-2 code.")
    region: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)


class Park(ParkBase, table=True):
    __table_args__ = (sa.UniqueConstraint("code", name="uq_park_code"),)

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTC_TIMESTAMP)


class ParkNodeBase(SQLModel):
    code: str = Field(max_length=64, description="Identifier unique within the park.")
    name: str = Field(max_length=200)
    kind: NodeKind = Field(sa_type=enum_column(NodeKind))
    isic_code: str | None = Field(
        default=None, max_length=8, description="ISIC Rev.4 class of an enterprise's activity."
    )
    tax_id: str | None = Field(default=None, max_length=32)


class ParkNode(ParkNodeBase, table=True):
    """An enterprise or a boundary node; one table so a flow's ends are plain foreign keys."""

    __tablename__ = "park_node"
    __table_args__ = (
        sa.UniqueConstraint("park_id", "code", name="uq_park_node_code"),
        sa.CheckConstraint(
            "kind <> 'enterprise' OR isic_code IS NOT NULL", name="ck_park_node_enterprise_isic"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    park_id: int = Field(foreign_key="park.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTC_TIMESTAMP)
