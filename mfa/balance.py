"""The mass balance of one enterprise over one period, per material and per group.

For a material m, an enterprise e and a period [t₀, t₁] (inclusive dates)::

    inputs_m   = Σ quantity of flows of m with target e
    outputs_m  = Σ quantity of flows of m with source e
    ΔS_m       = S_m(t₁) − S_m(t₀ − 1 day)
    residual   = inputs − outputs − ΔS                        (REFERENCE.md §5)

A flow belongs to the period when ``period_start ≥ t₀`` and ``period_end ≤ t₁`` (the
convention of every ledger read); a flow straddling a bound is left out. Reversals are flows
with the negated quantity, so the sums net them out; confirmations are the other side's report
of a transfer and are not counted (each transfer counts once, with the flow's quantity).
S_m(d) is the stock reading in force at the end of the latest ``on_date ≤ d`` (the highest id
among readings of that date): the opening stock is the one in force at the end of the day
before the period, the closing stock the one in force at the end of its last day. ΔS is
unknown unless both are known: a missing opening is not taken as zero.

Quantities are in the material's canonical unit (kg, m3, kWh). Two groups are totalled:

* ``MATERIAL``: products, by-products and wastes measured in kg. This is the balance that is
  judged. Energy carriers and emissions are left out of it, listed per line only: combustion
  air and the water vapour of combustion are not recorded, so a fuel's mass leaves as CO₂ and
  H₂O that weigh more than the fuel, and neither fuels nor emissions can close a mass balance.
* ``WATER``: materials measured in m3 (fresh water, wastewater). Reported, not judged
  against the mass balance: evaporation and water in products are rarely metered.

The tolerance is scaled to the larger side, as flodym checks each process::

    throughput        = max(inputs, outputs)
    relative residual = |residual| / throughput
    within tolerance  ⇔ relative residual ≤ tolerance   (and ⇔ residual = 0 when nothing flowed)

so 0.02 accepts 200 kg of residual on 10 t through the enterprise. In a group total, a stock
change that is unknown counts as zero in the residual, and ``stock_known`` says so.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mfa.access import Action, Caller, authorize, flow_scope
from mfa.errors import NotFoundError, QuantityError
from mfa.models import Flow, Material, MaterialKind, NodeKind, ParkNode, StockReading
from mfa.period import check_period
from mfa.reads import nodes_by_id
from mfa.units import CANONICAL_UNIT, Dimension

flow_t = Flow.__table__  # type: ignore[attr-defined]
stock_t = StockReading.__table__  # type: ignore[attr-defined]
node_t = ParkNode.__table__  # type: ignore[attr-defined]
material_t = Material.__table__  # type: ignore[attr-defined]

_MASS_KINDS = frozenset({MaterialKind.PRODUCT, MaterialKind.BY_PRODUCT, MaterialKind.WASTE})


class BalanceGroup(StrEnum):
    """The totals of a balance: the judged mass balance, and water reported beside it."""

    MATERIAL = "material"
    WATER = "water"


def balance_group(kind: MaterialKind, dimension: Dimension) -> BalanceGroup | None:
    """The group a material is totalled in; ``None`` for energy carriers and emissions."""
    if dimension is Dimension.VOLUME:
        return BalanceGroup.WATER
    if dimension is Dimension.MASS and kind in _MASS_KINDS:
        return BalanceGroup.MATERIAL
    return None


@dataclass(frozen=True, slots=True)
class BalanceLine:
    """One material's balance at the enterprise, in ``unit``.

    ``net`` = inputs − outputs − (stock_change or 0). ``opening_stock_on`` /
    ``closing_stock_on`` are the dates of the readings used, so a figure can be traced.
    """

    material_id: int
    code: str
    name: str
    kind: MaterialKind
    dimension: Dimension
    unit: str
    group: BalanceGroup | None
    inputs: float
    outputs: float
    opening_stock: float | None
    opening_stock_on: date | None
    closing_stock: float | None
    closing_stock_on: date | None
    stock_change: float | None
    net: float

    @property
    def moved(self) -> bool:
        """Whether anything flowed in or out (after reversals)."""
        return self.inputs != 0 or self.outputs != 0


@dataclass(frozen=True, slots=True)
class BalanceTotal:
    """The totals of one group (see the module docstring for the formulas).

    ``stock_change`` sums the known changes only; ``stock_known`` is False when a line of the
    group that moved has no known stock change (it then counts as zero in ``residual``).
    ``relative_residual`` is None when nothing flowed (``throughput`` = 0).
    """

    group: BalanceGroup
    unit: str
    inputs: float
    outputs: float
    stock_change: float
    residual: float
    throughput: float
    relative_residual: float | None
    within_tolerance: bool
    stock_known: bool


@dataclass(frozen=True, slots=True)
class MassBalance:
    """An enterprise's balance for [period_start, period_end], with the inputs that made it.

    ``flow_count`` is the number of ledger entries summed (reversals included): it equals the
    total count of the flows read filtered by this enterprise (either direction) and period.
    """

    enterprise_id: int
    period_start: date
    period_end: date
    tolerance: float
    lines: tuple[BalanceLine, ...]
    material: BalanceTotal
    water: BalanceTotal
    flow_count: int


def _check_tolerance(tolerance: float) -> float:
    if not math.isfinite(tolerance) or tolerance < 0:
        raise QuantityError(
            f"tolerance {tolerance!r} must be a finite fraction ≥ 0 (0.02 for 2% of throughput)",
            field=("tolerance",),
        )
    return float(tolerance)


_MATERIAL_COLUMNS = ("code", "name", "kind", "dimension")


async def _flow_sums(
    session: AsyncSession, *, caller: Caller, enterprise_id: int, start: date, end: date
) -> list[Any]:
    """Inputs, outputs and entry count per material: one GROUP BY statement."""
    f = flow_t.alias("f")
    inflow = sa.case((f.c.target_id == enterprise_id, f.c.quantity), else_=0.0)
    outflow = sa.case((f.c.source_id == enterprise_id, f.c.quantity), else_=0.0)
    sums = (
        sa.select(
            f.c.material_id,
            sa.func.sum(inflow).label("inputs"),
            sa.func.sum(outflow).label("outputs"),
            sa.func.count().label("entries"),
        )
        .where(
            flow_scope(caller, f.c.park_id, parties=(f.c.source_id, f.c.target_id)),
            sa.or_(f.c.source_id == enterprise_id, f.c.target_id == enterprise_id),
            f.c.period_start >= start,
            f.c.period_end <= end,
        )
        .group_by(f.c.material_id)
        .subquery("sums")
    )
    m = material_t
    rows = await session.execute(
        sa.select(sums, *(m.c[name] for name in _MATERIAL_COLUMNS)).select_from(
            sums.join(m, m.c.id == sums.c.material_id)
        )
    )
    return list(rows)


async def _stocks(
    session: AsyncSession, *, caller: Caller, enterprise_id: int, start: date, end: date
) -> list[Any]:
    """The readings in force at the opening and at the close, per material: one statement.

    ``closing_rank`` = 1 marks the newest reading up to ``end``; ``side_rank`` = 1 among the
    readings before ``start`` marks the opening one (the same row can be both).
    """
    s = stock_t
    newest_first = (s.c.on_date.desc(), s.c.id.desc())
    before = s.c.on_date < start
    ranked = (
        sa.select(
            s.c.material_id,
            s.c.on_date,
            s.c.quantity,
            sa.func.row_number()
            .over(partition_by=s.c.material_id, order_by=newest_first)
            .label("closing_rank"),
            sa.func.row_number()
            .over(partition_by=(s.c.material_id, before), order_by=newest_first)
            .label("side_rank"),
        )
        .select_from(s.join(node_t, node_t.c.id == s.c.enterprise_id))
        .where(
            flow_scope(caller, node_t.c.park_id, parties=(s.c.enterprise_id,)),
            s.c.enterprise_id == enterprise_id,
            s.c.on_date <= end,
        )
        .subquery("ranked")
    )
    m = material_t
    rows = await session.execute(
        sa.select(ranked, *(m.c[name] for name in _MATERIAL_COLUMNS))
        .select_from(ranked.join(m, m.c.id == ranked.c.material_id))
        .where(
            sa.or_(
                ranked.c.closing_rank == 1,
                sa.and_(ranked.c.on_date < start, ranked.c.side_rank == 1),
            )
        )
    )
    return list(rows)


def _total(group: BalanceGroup, lines: list[BalanceLine], tolerance: float) -> BalanceTotal:
    mine = [line for line in lines if line.group is group]
    inputs = sum(line.inputs for line in mine)
    outputs = sum(line.outputs for line in mine)
    stock_change = sum(line.stock_change for line in mine if line.stock_change is not None)
    residual = inputs - outputs - stock_change
    throughput = max(inputs, outputs)
    relative = abs(residual) / throughput if throughput > 0 else None
    within = relative <= tolerance if relative is not None else residual == 0
    return BalanceTotal(
        group=group,
        unit=CANONICAL_UNIT[Dimension.MASS if group is BalanceGroup.MATERIAL else Dimension.VOLUME],
        inputs=inputs,
        outputs=outputs,
        stock_change=stock_change,
        residual=residual,
        throughput=throughput,
        relative_residual=relative,
        within_tolerance=within,
        stock_known=all(line.stock_change is not None for line in mine if line.moved),
    )


async def mass_balance(
    session: AsyncSession,
    *,
    caller: Caller,
    enterprise_id: int,
    period_start: date,
    period_end: date,
    tolerance: float,
) -> MassBalance:
    """Inputs − outputs − stock change per material of ``enterprise_id`` over the period.

    Lists every material that flowed in or out in the period (even if reversals cancel it) or
    has a stock reading in force at its start or end; totals the ``MATERIAL`` (kg) and
    ``WATER`` (m3) groups and judges each against ``tolerance``, a fraction of throughput.
    Three statements whatever the number of flows. Raises ``PeriodError`` when the period ends
    before it starts and ``NotFoundError`` when the id is not an enterprise the caller sees
    (boundary nodes keep no books).
    """
    tolerance = _check_tolerance(tolerance)
    check_period(period_start, period_end)
    node = (await nodes_by_id(session, [enterprise_id], caller=caller)).get(enterprise_id)
    if node is None or node.kind is not NodeKind.ENTERPRISE:
        raise NotFoundError(
            f"no enterprise with id {enterprise_id}: only enterprises of the park keep books "
            "to balance (boundary nodes do not)",
            field=("enterprise",),
        )
    authorize(caller, Action.READ, park_id=node.park_id, node_id=node.id)
    flows = await _flow_sums(
        session, caller=caller, enterprise_id=enterprise_id, start=period_start, end=period_end
    )
    stocks = await _stocks(
        session, caller=caller, enterprise_id=enterprise_id, start=period_start, end=period_end
    )

    catalogue: dict[int, Any] = {}
    sums: dict[int, tuple[float, float]] = {}
    flow_count = 0
    for r in flows:
        catalogue[r.material_id] = r
        sums[r.material_id] = (float(r.inputs), float(r.outputs))
        flow_count += int(r.entries)
    opening: dict[int, tuple[float, date]] = {}
    closing: dict[int, tuple[float, date]] = {}
    for r in stocks:
        catalogue.setdefault(r.material_id, r)
        if r.closing_rank == 1:
            closing[r.material_id] = (float(r.quantity), r.on_date)
        if r.on_date < period_start and r.side_rank == 1:
            opening[r.material_id] = (float(r.quantity), r.on_date)

    lines: list[BalanceLine] = []
    for material_id, m in catalogue.items():
        kind, dimension = MaterialKind(m.kind), Dimension(m.dimension)
        inputs, outputs = sums.get(material_id, (0.0, 0.0))
        open_, close = opening.get(material_id), closing.get(material_id)
        change = close[0] - open_[0] if open_ is not None and close is not None else None
        lines.append(
            BalanceLine(
                material_id=material_id,
                code=m.code,
                name=m.name,
                kind=kind,
                dimension=dimension,
                unit=CANONICAL_UNIT[dimension],
                group=balance_group(kind, dimension),
                inputs=inputs,
                outputs=outputs,
                opening_stock=None if open_ is None else open_[0],
                opening_stock_on=None if open_ is None else open_[1],
                closing_stock=None if close is None else close[0],
                closing_stock_on=None if close is None else close[1],
                stock_change=change,
                net=inputs - outputs - (change or 0.0),
            )
        )
    lines.sort(key=lambda line: line.code)
    return MassBalance(
        enterprise_id=enterprise_id,
        period_start=period_start,
        period_end=period_end,
        tolerance=tolerance,
        lines=tuple(lines),
        material=_total(BalanceGroup.MATERIAL, lines, tolerance),
        water=_total(BalanceGroup.WATER, lines, tolerance),
        flow_count=flow_count,
    )


@dataclass(frozen=True, slots=True)
class EnterpriseBalance:
    """One enterprise's judged ``MATERIAL`` balance over one month of a park-wide check.

    ``lines`` are the material group's lines (the same figures ``mass_balance`` gives for
    that enterprise and month), so the residual can be traced to materials.
    """

    enterprise_id: int
    period_start: date
    period_end: date
    lines: tuple[BalanceLine, ...]
    total: BalanceTotal


def calendar_months(start: date, end: date) -> list[tuple[date, date]]:
    """The calendar months meeting [start, end], each clipped to it (inclusive dates)."""
    check_period(start, end)
    months: list[tuple[date, date]] = []
    first = start
    while first <= end:
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        months.append((first, min(end, following - timedelta(days=1))))
        first = following
    return months


async def park_balances(
    session: AsyncSession,
    *,
    caller: Caller,
    park_id: int,
    period_start: date,
    period_end: date,
    tolerance: float,
) -> list[EnterpriseBalance]:
    """The ``MATERIAL`` balance of every enterprise of the park, month by month.

    Books are judged per calendar month (clipped to the period): a month's 15% residual would
    vanish into a year's total. Each (enterprise, month) is exactly what ``mass_balance``
    returns for that enterprise and month (same membership rule, same stock readings in
    force, same ``_total``), computed for the whole park from one scan of its flows (sums
    per source, target, material and period, split here to both ends and to months) and one
    of the stock readings that can be in force.
    Only (enterprise, month) pairs with a line are returned.
    """
    tolerance = _check_tolerance(tolerance)
    months = calendar_months(period_start, period_end)
    authorize(caller, Action.READ, park_id=park_id)
    m = material_t
    catalogue = {
        r.id: r
        for r in await session.execute(
            sa.select(m.c.id, *(m.c[name] for name in _MATERIAL_COLUMNS)).where(
                m.c.dimension == Dimension.MASS.value,
                m.c.kind.in_([k.value for k in _MASS_KINDS]),
            )
        )
    }
    f = flow_t.alias("f")
    rows = await session.execute(
        sa.select(
            f.c.source_id,
            f.c.target_id,
            f.c.material_id,
            f.c.period_start,
            f.c.period_end,
            sa.func.sum(f.c.quantity),
        )
        .where(
            flow_scope(caller, f.c.park_id),
            f.c.park_id == park_id,
            f.c.material_id.in_(sorted(catalogue)),
            f.c.period_start >= period_start,
            f.c.period_end <= period_end,
        )
        .group_by(f.c.source_id, f.c.target_id, f.c.material_id, f.c.period_start, f.c.period_end)
    )
    enterprises = {
        r.id
        for r in await session.execute(
            sa.select(node_t.c.id).where(
                node_t.c.park_id == park_id, node_t.c.kind == NodeKind.ENTERPRISE.value
            )
        )
    }
    month_of: dict[tuple[date, date], int | None] = {}
    sums: dict[tuple[int, int], dict[int, list[float]]] = {}
    for source, target, material_id, start, end, quantity in rows:
        key = (start, end)
        if key not in month_of:  # a straddling flow is in no monthly balance
            month_of[key] = next(
                (i for i, (first, last) in enumerate(months) if start >= first and end <= last),
                None,
            )
        month = month_of[key]
        if month is None:
            continue
        for side, node in ((0, target), (1, source)):
            if node in enterprises:
                line = sums.setdefault((node, month), {}).setdefault(material_id, [0.0, 0.0])
                line[side] += float(quantity)

    readings = await _park_stocks(
        session, caller=caller, park_id=park_id, material_ids=sorted(catalogue), end=period_end
    )
    result: list[EnterpriseBalance] = []
    kinds = {material_id: MaterialKind(r.kind) for material_id, r in catalogue.items()}
    stocked: dict[int, set[int]] = {}
    for node, material_id in readings:
        stocked.setdefault(node, set()).add(material_id)
    for enterprise_id in sorted({node for node, _ in sums} | set(stocked)):
        for index, (first, last) in enumerate(months):
            flowed = sums.get((enterprise_id, index), {})
            lines: list[BalanceLine] = []
            for material_id in sorted(set(flowed) | stocked.get(enterprise_id, set())):
                series = readings.get((enterprise_id, material_id))
                close = _in_force(series, last) if series else None
                if material_id not in flowed and close is None:
                    continue
                open_ = _in_force(series, first - timedelta(days=1)) if series else None
                inputs, outputs = flowed.get(material_id, (0.0, 0.0))
                change = close[1] - open_[1] if open_ and close else None
                r = catalogue[material_id]
                lines.append(
                    BalanceLine(
                        material_id=material_id,
                        code=r.code,
                        name=r.name,
                        kind=kinds[material_id],
                        dimension=Dimension.MASS,
                        unit=CANONICAL_UNIT[Dimension.MASS],
                        group=BalanceGroup.MATERIAL,
                        inputs=inputs,
                        outputs=outputs,
                        opening_stock=open_[1] if open_ else None,
                        opening_stock_on=open_[0] if open_ else None,
                        closing_stock=close[1] if close else None,
                        closing_stock_on=close[0] if close else None,
                        stock_change=change,
                        net=inputs - outputs - (change or 0.0),
                    )
                )
            if lines:
                lines.sort(key=lambda line: line.code)
                total = _total(BalanceGroup.MATERIAL, lines, tolerance)
                result.append(EnterpriseBalance(enterprise_id, first, last, tuple(lines), total))
    return result


def _in_force(series: list[tuple[date, float]], day: date) -> tuple[date, float] | None:
    """The reading in force at the end of ``day`` in a date-sorted series, if any."""
    index = bisect.bisect_right(series, day, key=lambda reading: reading[0])
    return series[index - 1] if index else None


async def _park_stocks(
    session: AsyncSession, *, caller: Caller, park_id: int, material_ids: list[int], end: date
) -> dict[tuple[int, int], list[tuple[date, float]]]:
    """Per (enterprise, material), the newest reading of each date up to ``end``, date-sorted.

    One statement; ``same_day`` = 1 keeps the highest id of a date (the one in force).
    """
    s = stock_t
    ranked = (
        sa.select(
            s.c.enterprise_id,
            s.c.material_id,
            s.c.on_date,
            s.c.quantity,
            sa.func.row_number()
            .over(
                partition_by=(s.c.enterprise_id, s.c.material_id, s.c.on_date),
                order_by=s.c.id.desc(),
            )
            .label("same_day"),
        )
        .select_from(s.join(node_t, node_t.c.id == s.c.enterprise_id))
        .where(
            flow_scope(caller, node_t.c.park_id),
            node_t.c.park_id == park_id,
            s.c.material_id.in_(material_ids),
            s.c.on_date <= end,
        )
        .subquery("ranked")
    )
    rows = await session.execute(
        sa.select(ranked.c.enterprise_id, ranked.c.material_id, ranked.c.on_date, ranked.c.quantity)
        .where(ranked.c.same_day == 1)
        .order_by(ranked.c.enterprise_id, ranked.c.material_id, ranked.c.on_date)
    )
    series: dict[tuple[int, int], list[tuple[date, float]]] = {}
    for enterprise_id, material_id, on_date, quantity in rows:
        series.setdefault((enterprise_id, material_id), []).append((on_date, float(quantity)))
    return series
