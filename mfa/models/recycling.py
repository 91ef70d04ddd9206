"""Recycling-allocation parameters of the Circular Footprint Formula, per material or flow.

Appended, never edited: for a material (or one flow of it) the newest row is in force, so an
auditor can see which parameters a footprint used and when they changed. A row with a
``flow_id`` overrides the material's row for that flow.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from mfa.models._types import UTC_TIMESTAMP, utcnow


class RecyclingParameters(SQLModel, table=True):
    __tablename__ = "recycling_parameters"
    __table_args__ = (sa.Index("ix_recycling_parameters_lookup", "material_id", "flow_id"),)

    id: int | None = Field(default=None, primary_key=True)
    material_id: int = Field(foreign_key="material.id")
    flow_id: int | None = Field(default=None, foreign_key="flow.id")
    a: float = Field(description="A: burden/credit share between supplier and user, 0.2–0.8.")
    b: float = Field(default=0.0, description="B: the same for energy recovery.")
    r1: float = Field(description="R1: recycled content of the input.")
    r2: float = Field(description="R2: share recycled at end of life.")
    r3: float = Field(default=0.0, description="R3: share sent to energy recovery.")
    qsin_qp: float = Field(default=1.0, description="Qsin/Qp: quality of recycled input.")
    qsout_qp: float = Field(default=1.0, description="Qsout/Qp: quality of recycled output.")
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTC_TIMESTAMP)
