"""The material catalogue: what flows, how it is classified, how it is measured."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from mfa.models._types import UTC_TIMESTAMP, enum_column, utcnow
from mfa.units import Dimension


class MaterialKind(StrEnum):
    PRODUCT = "product"
    BY_PRODUCT = "by_product"
    WASTE = "waste"
    ENERGY = "energy"
    WATER = "water"
    EMISSION = "emission"


class MaterialBase(SQLModel):
    code: str = Field(max_length=64, description="Stable identifier, e.g. 'steel-scrap'.")
    name: str = Field(max_length=200)
    kind: MaterialKind = Field(sa_type=enum_column(MaterialKind))
    dimension: Dimension = Field(sa_type=enum_column(Dimension))
    hs_code: str | None = Field(default=None, max_length=12, description="Harmonized System.")
    ewc_code: str | None = Field(
        default=None,
        max_length=9,
        description="European List of Waste code, 'NN NN NN', '*' marking hazardous entries.",
    )
    vn_waste_code: str | None = Field(
        default=None, max_length=16, description="Code in Vietnam's waste list (Circular 02/2022)."
    )
    hazardous: bool = False
    renewable: bool = Field(default=False, description="Renewable (e.g. bio-based) material.")
    secondary: bool = Field(default=False, description="Reused or recycled, not virgin, content.")
    description: str | None = Field(default=None, max_length=2000)
    brightway_database: str | None = Field(
        default=None,
        max_length=200,
        description="Database of the Brightway activity this material is bought as, if linked.",
    )
    brightway_code: str | None = Field(
        default=None, max_length=200, description="Code of that Brightway activity."
    )


class Material(MaterialBase, table=True):
    __table_args__ = (sa.UniqueConstraint("code", name="uq_material_code"),)

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTC_TIMESTAMP)
