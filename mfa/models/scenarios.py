"""Stored what-if scenarios: a named list of changes to one period's flows of a park.

A scenario never touches the ledger: it is evaluated against the ledger as it stands
(``mfa.scenarios``). Scenarios are created, never edited; a different idea is a new name.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from mfa.models._types import UTC_TIMESTAMP, enum_column, utcnow


class ScenarioChangeKind(StrEnum):
    """What a change does to the period's flows (see ``mfa.scenarios`` for the arithmetic).

    ``REROUTE_WASTE``: a share of an enterprise's waste sent to landfill or incineration goes
    to a neighbour in place of that neighbour's purchase of a virgin material.
    ``SOLAR_FOR_GRID``: a share of an enterprise's grid electricity is replaced by rooftop
    solar. ``WATER_REUSE``: a share of an enterprise's water withdrawal is replaced by reusing
    its own wastewater.
    """

    REROUTE_WASTE = "reroute_waste"
    SOLAR_FOR_GRID = "solar_for_grid"
    WATER_REUSE = "water_reuse"


class Scenario(SQLModel, table=True):
    __tablename__ = "scenario"
    __table_args__ = (
        sa.UniqueConstraint("park_id", "name", name="uq_scenario_name"),
        sa.CheckConstraint("period_end >= period_start", name="ck_scenario_period"),
    )

    id: int | None = Field(default=None, primary_key=True)
    park_id: int = Field(foreign_key="park.id", index=True)
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    period_start: date
    period_end: date
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTC_TIMESTAMP)


class ScenarioChange(SQLModel, table=True):
    """One change of a scenario, applied to ``share`` (0 < share ≤ 1) of a baseline flow.

    ``enterprise_id`` is the enterprise whose flow changes (the waste producer, the power or
    water user); ``material_id`` the waste or water material (the grid's energy materials for
    ``SOLAR_FOR_GRID``, when null); ``partner_id`` / ``replaced_material_id`` the neighbour
    and the virgin material of a ``REROUTE_WASTE``.
    """

    __tablename__ = "scenario_change"
    __table_args__ = (
        sa.UniqueConstraint("scenario_id", "position", name="uq_scenario_change_position"),
        sa.CheckConstraint("share > 0 AND share <= 1", name="ck_scenario_change_share"),
    )

    id: int | None = Field(default=None, primary_key=True)
    scenario_id: int = Field(foreign_key="scenario.id")
    position: int
    kind: ScenarioChangeKind = Field(sa_type=enum_column(ScenarioChangeKind))
    enterprise_id: int = Field(foreign_key="park_node.id")
    material_id: int | None = Field(default=None, foreign_key="material.id")
    partner_id: int | None = Field(default=None, foreign_key="park_node.id")
    replaced_material_id: int | None = Field(default=None, foreign_key="material.id")
    share: float
