"""Recycling-allocation parameters: recorded per material or per flow, read as in force.

Parameters are validated by ``lca.recycling.CffParameters`` (the ranges of the PEF method)
before they are stored; rows are appended and the newest for a material, or for one flow of it,
is the one in force.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from lca.recycling import CffParameters
from mfa.access import Action, Caller, authorize, flow_scope
from mfa.errors import NotFoundError
from mfa.models import Flow, Material, RecyclingParameters

_table = RecyclingParameters.__table__  # type: ignore[attr-defined]
_flows = Flow.__table__  # type: ignore[attr-defined]
_FIELDS = ("a", "b", "r1", "r2", "r3", "qsin_qp", "qsout_qp")


async def record_parameters(
    session: AsyncSession,
    parameters: CffParameters,
    *,
    caller: Caller,
    material_id: int,
    flow_id: int | None = None,
) -> int:
    """Store ``parameters`` for a material, or for one of its flows; returns the row id."""
    authorize(caller, Action.RECORD)
    if await session.get(Material, material_id) is None:
        raise NotFoundError(f"no material with id {material_id}", field=("material",))
    if flow_id is not None:
        flow = (
            await session.execute(sa.select(_flows.c.material_id).where(_flows.c.id == flow_id))
        ).first()
        if flow is None:
            raise NotFoundError(f"no flow with id {flow_id}", field=("flow",))
        if flow.material_id != material_id:
            raise NotFoundError(f"flow {flow_id} is not of that material", field=("flow",))
    result = await session.execute(
        sa.insert(_table).returning(_table.c.id),
        [
            {
                "material_id": material_id,
                "flow_id": flow_id,
                "recorded_by": caller.subject,
                **{name: getattr(parameters, name) for name in _FIELDS},
            }
        ],
    )
    return int(result.scalar_one())


@dataclass(frozen=True, slots=True)
class ParametersInForce:
    """Material defaults, and the flows of the period that carry their own parameters."""

    by_material: dict[int, CffParameters]
    by_flow: dict[int, tuple[int, int, int, float, CffParameters]]
    """flow id → (source id, target id, material id, quantity, parameters)."""


def _parameters(row: sa.Row[tuple[object, ...]]) -> CffParameters:
    return CffParameters(**{name: float(getattr(row, name)) for name in _FIELDS})


async def parameters_in_force(
    session: AsyncSession,
    *,
    caller: Caller,
    park_id: int,
    period_start: date,
    period_end: date,
    material_ids: Iterable[int],
) -> ParametersInForce:
    """The newest parameters per material, and per flow of the park's period (two statements)."""
    wanted = sorted(set(material_ids))
    newest = (
        sa.select(sa.func.max(_table.c.id))
        .where(_table.c.material_id.in_(wanted), _table.c.flow_id.is_(None))
        .group_by(_table.c.material_id)
    )
    by_material = {
        r.material_id: _parameters(r)
        for r in await session.execute(sa.select(_table).where(_table.c.id.in_(newest)))
    }
    newest_by_flow = (
        sa.select(sa.func.max(_table.c.id))
        .where(_table.c.flow_id.is_not(None))
        .group_by(_table.c.flow_id)
    )
    rows = await session.execute(
        sa.select(_table, _flows.c.source_id, _flows.c.target_id, _flows.c.quantity)
        .join(_flows, _flows.c.id == _table.c.flow_id)
        .where(
            _table.c.id.in_(newest_by_flow),
            flow_scope(caller, _flows.c.park_id),
            _flows.c.park_id == park_id,
            _flows.c.period_start >= period_start,
            _flows.c.period_end <= period_end,
        )
    )
    by_flow = {
        r.flow_id: (r.source_id, r.target_id, r.material_id, float(r.quantity), _parameters(r))
        for r in rows
    }
    return ParametersInForce(by_material, by_flow)
