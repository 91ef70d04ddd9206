"""Following material along the park's chain of enterprises, level by level.

Downstream from a flow A→B, depth 1 is the flow itself, depth 2 every flow out of B in the
period (whatever its material: what B passed on, and what B made), depth 3 every flow out of
the targets of depth 2, and so on. Upstream mirrors it: depth 2 is every flow into A. This is
a breadth-first search over the flow graph::

    E₁ = start flows,   N₁ = far ends of E₁ (targets downstream, sources upstream)
    Eₖ = { flows out of (into) Nₖ₋₁ } \\ (E₁ ∪ … ∪ Eₖ₋₁)
    Nₖ = far ends of Eₖ that are enterprises and were never expanded

so a flow appears once, at its smallest depth, and loops (scrap back to the mill) end because
no node is expanded twice. Boundary nodes (suppliers, customers, landfill, grid) end a branch:
they keep no books, so what they pass on is not the park's material. Reversal entries and the
flows they cancel are never followed (together they moved nothing). Only flows inside
[period_start, period_end] are followed, with the ledger's convention: ``period_start ≥ start``
and ``period_end ≤ end``.

No quantities are propagated: the edges carry each flow's own quantity in its canonical unit
(kg, m3, kWh) and attributing shares along the chain is the analyses' job. One statement reads
the start flows and one statement reads each level (frontier node ids IN (...)), plus one
``LIMIT 1`` probe past ``max_depth`` when a frontier is left, so a chain costs at most
``max_depth + 1`` statements.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mfa.access import Caller, flow_scope
from mfa.errors import MfaError, NotFoundError, ReversalError
from mfa.models import Flow, NodeKind, ParkNode
from mfa.period import check_period

flow_t = Flow.__table__  # type: ignore[attr-defined]
node_t = ParkNode.__table__  # type: ignore[attr-defined]

MAX_CHAIN_DEPTH = 100
"""Deepest chain one call may follow (one statement per level)."""

_ENTERPRISE = NodeKind.ENTERPRISE.value


class ChainDirection(StrEnum):
    """Where to follow material from a flow: on to its users, or back to its origins."""

    DOWNSTREAM = "downstream"
    UPSTREAM = "upstream"


@dataclass(frozen=True, slots=True)
class ChainEdge:
    """A flow of the chain, found at ``depth`` (1 for a start flow); ``quantity`` in ``unit``."""

    depth: int
    flow_id: int
    source_id: int
    target_id: int
    material_id: int
    quantity: float
    unit: str


@dataclass(frozen=True, slots=True)
class Chain:
    """The flows reached from ``start_flow_ids``, ordered by depth, then flow id.

    ``truncated`` is True when flows not in the chain continue from its last level, i.e. a
    larger ``max_depth`` would have found more. ``node_ids`` are the ends of every edge, sorted.
    """

    direction: ChainDirection
    max_depth: int
    period_start: date
    period_end: date
    start_flow_ids: tuple[int, ...]
    edges: tuple[ChainEdge, ...]
    truncated: bool
    node_ids: tuple[int, ...]


def _ends(f: Any, direction: ChainDirection) -> tuple[sa.ColumnElement[int], sa.ColumnElement[int]]:
    """(near, far): the end a level is expanded from and the end it leads to."""
    if direction is ChainDirection.DOWNSTREAM:
        return f.c.source_id, f.c.target_id
    return f.c.target_id, f.c.source_id


def _standing(f: Any) -> list[sa.ColumnElement[bool]]:
    """Neither a reversal entry nor a reversed flow."""
    reversal = flow_t.alias("reversal")
    return [f.c.reverses_id.is_(None), ~sa.exists().where(reversal.c.reverses_id == f.c.id)]


def _edge(row: Any, depth: int) -> ChainEdge:
    return ChainEdge(
        depth=depth,
        flow_id=row.id,
        source_id=row.source_id,
        target_id=row.target_id,
        material_id=row.material_id,
        quantity=float(row.quantity),
        unit=row.unit,
    )


async def _start_flows(
    session: AsyncSession, ids: Sequence[int], *, caller: Caller, direction: ChainDirection
) -> list[Any]:
    f = flow_t.alias("f")
    far_node = node_t.alias("far_node")
    reversal = flow_t.alias("reversal")
    _, far = _ends(f, direction)
    rows = await session.execute(
        sa.select(
            f.c.id,
            f.c.source_id,
            f.c.target_id,
            f.c.material_id,
            f.c.quantity,
            f.c.unit,
            f.c.period_start,
            f.c.period_end,
            f.c.reverses_id,
            reversal.c.id.label("reversed_by_id"),
            far_node.c.kind.label("far_kind"),
        )
        .select_from(
            f.join(far_node, far_node.c.id == far).outerjoin(
                reversal, reversal.c.reverses_id == f.c.id
            )
        )
        .where(
            flow_scope(caller, f.c.park_id, parties=(f.c.source_id, f.c.target_id)), f.c.id.in_(ids)
        )
        .order_by(f.c.id)
    )
    return list(rows)


def _level_select(
    frontier: Collection[int],
    *,
    caller: Caller,
    direction: ChainDirection,
    period_start: date,
    period_end: date,
) -> sa.Select[Any]:
    f = flow_t.alias("f")
    far_node = node_t.alias("far_node")
    near, far = _ends(f, direction)
    return (
        sa.select(
            f.c.id,
            f.c.source_id,
            f.c.target_id,
            f.c.material_id,
            f.c.quantity,
            f.c.unit,
            far.label("far_id"),
            far_node.c.kind.label("far_kind"),
        )
        .select_from(f.join(far_node, far_node.c.id == far))
        .where(
            flow_scope(caller, f.c.park_id, parties=(f.c.source_id, f.c.target_id)),
            near.in_(sorted(frontier)),
            f.c.period_start >= period_start,
            f.c.period_end <= period_end,
            *_standing(f),
        )
        .order_by(f.c.id)
    )


async def follow_chain(
    session: AsyncSession,
    *,
    caller: Caller,
    start_flow_ids: Sequence[int],
    direction: ChainDirection,
    max_depth: int,
    period_start: date | None = None,
    period_end: date | None = None,
) -> Chain:
    """The flows reached from ``start_flow_ids`` within ``max_depth`` levels (see the module).

    The period defaults to the start flows' (earliest start, latest end). Raises
    ``NotFoundError`` (field ``start``) for a start flow that does not exist or that the caller
    cannot see, ``ReversalError`` (field ``start``) for a start flow that is a reversal or has
    been reversed, ``PeriodError`` when the period ends before it starts, and ``MfaError``
    (field ``maxDepth``) unless 1 ≤ max_depth ≤ ``MAX_CHAIN_DEPTH``.
    """
    if not 1 <= max_depth <= MAX_CHAIN_DEPTH:
        raise MfaError(
            f"max depth {max_depth} must be between 1 (the start flows only) and {MAX_CHAIN_DEPTH}",
            field=("maxDepth",),
        )
    wanted = sorted(set(start_flow_ids))
    if not wanted:
        raise MfaError("give at least one flow to start the chain from", field=("start",))
    starts = await _start_flows(session, wanted, caller=caller, direction=direction)
    missing = sorted(set(wanted) - {r.id for r in starts})
    if missing:
        raise NotFoundError(
            f"no flow with id {', '.join(map(str, missing))}: start from recorded flows",
            field=("start",),
        )
    cancelled = [r.id for r in starts if r.reverses_id is not None or r.reversed_by_id is not None]
    if cancelled:
        raise ReversalError(
            f"flow {', '.join(map(str, cancelled))} is a reversal or has been reversed and "
            "moved nothing: start from flows that stand in the ledger",
            field=("start",),
        )
    start = period_start if period_start is not None else min(r.period_start for r in starts)
    end = period_end if period_end is not None else max(r.period_end for r in starts)
    check_period(start, end)

    edges = [_edge(r, 1) for r in starts]
    visited = set(wanted)
    expanded: set[int] = set()
    frontier = {
        r.target_id if direction is ChainDirection.DOWNSTREAM else r.source_id
        for r in starts
        if r.far_kind == _ENTERPRISE
    }
    depth = 1
    while frontier and depth < max_depth:
        depth += 1
        expanded |= frontier
        rows = await session.execute(
            _level_select(
                frontier, caller=caller, direction=direction, period_start=start, period_end=end
            )
        )
        frontier = set()
        for r in rows:
            if r.id in visited:
                continue
            visited.add(r.id)
            edges.append(_edge(r, depth))
            if r.far_kind == _ENTERPRISE and r.far_id not in expanded:
                frontier.add(r.far_id)

    truncated = False
    if frontier:
        # Flows out of never-expanded nodes can only be in the chain as start flows.
        probe = _level_select(
            frontier, caller=caller, direction=direction, period_start=start, period_end=end
        )
        beyond = await session.execute(
            probe.where(probe.selected_columns.id.not_in(wanted)).limit(1)
        )
        truncated = beyond.first() is not None

    edges.sort(key=lambda e: (e.depth, e.flow_id))
    return Chain(
        direction=direction,
        max_depth=max_depth,
        period_start=start,
        period_end=end,
        start_flow_ids=tuple(wanted),
        edges=tuple(edges),
        truncated=truncated,
        node_ids=tuple(sorted({n for e in edges for n in (e.source_id, e.target_id)})),
    )


async def output_flow_ids(
    session: AsyncSession,
    *,
    caller: Caller,
    enterprise_id: int,
    material_id: int,
    direction: ChainDirection,
    period_start: date,
    period_end: date,
) -> list[int]:
    """Start flows for a chain from an enterprise and a material, in id order.

    DOWNSTREAM: the flows of ``material_id`` out of ``enterprise_id`` in the period; UPSTREAM:
    the flows of it into the enterprise. Reversal entries and reversed flows are left out, as
    ``follow_chain`` refuses them. An empty list when there are none.
    """
    check_period(period_start, period_end)
    f = flow_t.alias("f")
    near = f.c.source_id if direction is ChainDirection.DOWNSTREAM else f.c.target_id
    rows = await session.execute(
        sa.select(f.c.id)
        .where(
            flow_scope(caller, f.c.park_id, parties=(f.c.source_id, f.c.target_id)),
            near == enterprise_id,
            f.c.material_id == material_id,
            f.c.period_start >= period_start,
            f.c.period_end <= period_end,
            *_standing(f),
        )
        .order_by(f.c.id)
    )
    return list(rows.scalars())
