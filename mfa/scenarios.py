"""What-if scenarios: store a named list of changes to a period's flows, and evaluate it.

A scenario never changes the ledger. Evaluating it reads the baseline flows of its period (one
GROUP BY statement) and applies each change to them. With D the days of the period, every
change moves ``moved`` = share × baseline (capped as said below) and gives, as changes
against the baseline (negative = less):

* ``REROUTE_WASTE`` (producer p, waste w, neighbour b, virgin material v):
  baseline = w sent by p to landfill or incineration; moved = min(share·baseline, v bought
  by b from outside suppliers); p: waste to disposal −moved, CO2e −moved·E_D(w), cost
  −moved·disposal fee; b: virgin material −moved, CO2e −moved·E_v(v) + moved·E_rec(w), cost
  −moved·price of v. One kg of waste replaces one kg of virgin material.
* ``SOLAR_FOR_GRID`` (enterprise e): baseline = e's electricity from the grid;
  CO2e −moved·EF_grid (Vietnam's combined margin of the period's last year,
  ``lca.factors.grid_factor``) + moved·E_solar (no sourced rooftop-PV factor: named as
  missing); cost −moved·grid price.
* ``WATER_REUSE`` (enterprise e, water material m): baseline = m withdrawn by e from outside
  suppliers; water withdrawn −moved; wastewater −min(moved, e's wastewater sent out), since
  the reused water is wastewater no longer discharged; CO2e −moved·E_v(m); cost
  −moved·water price − that wastewater·treatment fee.

E_v, E_D, E_rec as in ``mfa.symbiosis``. A factor that is missing is not counted, and the
result names it (``missing``): the CO2e change is then the sum of the terms that have one.
Prices are Σ value / Σ quantity of the valued flows of that enterprise, material and
direction in the period; one not recorded is named in ``notes``. Per-year figures scale by
365 / D. The park's figures are the sums over its enterprises.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from lca import factors
from lca.errors import MissingFactorError
from mfa.access import Action, Caller, authorize, flow_scope
from mfa.db import savepoint
from mfa.errors import BatchValidationError, DuplicateError, MfaError, NotFoundError
from mfa.models import (
    Flow,
    Material,
    MaterialKind,
    NodeKind,
    ParkNode,
    Scenario,
    ScenarioChange,
    ScenarioChangeKind,
)
from mfa.models._types import utcnow
from mfa.period import check_period
from mfa.symbiosis import (
    DAYS_PER_YEAR,
    DISPOSAL_NODES,
    Money,
    Price,
    check_park,
    price_of,
    substitutes,
)
from mfa.units import Dimension

flow_t = Flow.__table__  # type: ignore[attr-defined]
node_t = ParkNode.__table__  # type: ignore[attr-defined]
material_t = Material.__table__  # type: ignore[attr-defined]
scenario_t = Scenario.__table__  # type: ignore[attr-defined]
change_t = ScenarioChange.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ChangeCreate:
    kind: ScenarioChangeKind
    enterprise_id: int
    share: float
    material_id: int | None = None
    partner_id: int | None = None
    replaced_material_id: int | None = None


@dataclass(frozen=True, slots=True)
class ScenarioCreate:
    park_id: int
    name: str
    period_start: date
    period_end: date
    changes: tuple[ChangeCreate, ...]
    description: str | None = None


@dataclass(frozen=True, slots=True)
class StoredScenario:
    id: int
    park_id: int
    name: str
    description: str | None
    period_start: date
    period_end: date
    created_by: str
    changes: tuple[ChangeCreate, ...]


async def _nodes(session: AsyncSession, park_id: int) -> dict[int, Any]:
    rows = await session.execute(
        sa.select(node_t.c.id, node_t.c.code, node_t.c.kind).where(node_t.c.park_id == park_id)
    )
    return {r.id: r for r in rows}


async def _materials(session: AsyncSession) -> dict[int, Any]:
    m = material_t
    rows = await session.execute(
        sa.select(m.c.id, m.c.code, m.c.kind, m.c.dimension, m.c.hs_code, m.c.ewc_code)
    )
    return {r.id: r for r in rows}


def _check_change(
    change: ChangeCreate, nodes: dict[int, Any], materials: dict[int, Any]
) -> list[MfaError]:
    errors: list[MfaError] = []

    def enterprise(node_id: int | None, name: str) -> bool:
        if node_id is None:
            errors.append(MfaError(f"a {change.kind.value} change needs {name}", field=(name,)))
            return False
        node = nodes.get(node_id)
        if node is None or node.kind != NodeKind.ENTERPRISE:
            errors.append(NotFoundError(f"no enterprise {node_id} in the park", field=(name,)))
            return False
        return True

    def material(material_id: int | None, name: str, dimension: Dimension) -> Any:
        if material_id is None:
            errors.append(MfaError(f"a {change.kind.value} change needs {name}", field=(name,)))
            return None
        row = materials.get(material_id)
        if row is None:
            errors.append(NotFoundError(f"no material with id {material_id}", field=(name,)))
        elif row.dimension != dimension:
            errors.append(
                MfaError(f"{row.code} is not measured in {dimension.value}", field=(name,))
            )
            return None
        return row

    if not (math.isfinite(change.share) and 0 < change.share <= 1):
        errors.append(
            MfaError(f"share {change.share!r} must be in (0, 1]: 0.3 for 30%", field=("share",))
        )
    enterprise(change.enterprise_id, "enterprise")
    if change.kind is ScenarioChangeKind.REROUTE_WASTE:
        waste = material(change.material_id, "material", Dimension.MASS)
        virgin = material(change.replaced_material_id, "replacedMaterial", Dimension.MASS)
        if enterprise(change.partner_id, "partner") and change.partner_id == change.enterprise_id:
            errors.append(MfaError("the neighbour must be another enterprise", field=("partner",)))
        if waste is not None and virgin is not None:
            headings = {s.hs_heading for s in substitutes().get(waste.ewc_code or "", ())}
            if (virgin.hs_code or "")[:4] not in headings:
                errors.append(
                    MfaError(
                        f"the crosswalk (datasets/crosswalk/waste_substitutes.csv) lists no "
                        f"substitution of {waste.code} (EWC {waste.ewc_code}) for "
                        f"{virgin.code} (HS {virgin.hs_code})",
                        field=("replacedMaterial",),
                    )
                )
    elif change.kind is ScenarioChangeKind.WATER_REUSE:
        material(change.material_id, "material", Dimension.VOLUME)
    elif change.material_id is not None:
        material(change.material_id, "material", Dimension.ENERGY)
    return errors


async def create_scenario(
    session: AsyncSession, data: ScenarioCreate, *, caller: Caller
) -> StoredScenario:
    """Validate every change (errors collected, each with its ``changes.i`` path) and store
    the scenario. Refuses an empty name, a name already used in the park, no changes."""
    check_period(data.period_start, data.period_end)
    await check_park(session, caller=caller, park_id=data.park_id)
    authorize(caller, Action.RECORD, park_id=data.park_id)
    name = data.name.strip()
    errors: list[MfaError] = []
    if not name or len(name) > 200:
        errors.append(MfaError("give the scenario a name of 1 to 200 characters", field=("name",)))
    if not data.changes:
        errors.append(MfaError("a scenario needs at least one change", field=("changes",)))
    nodes, materials = await _nodes(session, data.park_id), await _materials(session)
    for index, change in enumerate(data.changes):
        errors += [e.at("changes", str(index)) for e in _check_change(change, nodes, materials)]
    if errors:
        raise errors[0] if len(errors) == 1 else BatchValidationError(errors)
    try:
        async with savepoint(session):
            result = await session.execute(
                sa.insert(scenario_t).returning(scenario_t.c.id),
                [
                    {
                        "park_id": data.park_id,
                        "name": name,
                        "description": data.description,
                        "period_start": data.period_start,
                        "period_end": data.period_end,
                        "created_by": caller.subject,
                        "created_at": utcnow(),
                    }
                ],
            )
    except IntegrityError as exc:
        raise DuplicateError(
            f"the park already has a scenario named {name!r}: choose another name",
            field=("name",),
        ) from exc
    scenario_id = int(result.scalar_one())
    await session.execute(
        sa.insert(change_t),
        [
            {
                "scenario_id": scenario_id,
                "position": index,
                "kind": change.kind,
                "enterprise_id": change.enterprise_id,
                "material_id": change.material_id,
                "partner_id": change.partner_id,
                "replaced_material_id": change.replaced_material_id,
                "share": float(change.share),
            }
            for index, change in enumerate(data.changes)
        ],
    )
    return await get_scenario(session, scenario_id, caller=caller)


async def get_scenario(
    session: AsyncSession, scenario_id: int, *, caller: Caller
) -> StoredScenario:
    row = (
        await session.execute(sa.select(scenario_t).where(scenario_t.c.id == scenario_id))
    ).first()
    if row is None:
        raise NotFoundError(f"no scenario with id {scenario_id}", field=("scenario",))
    authorize(caller, Action.READ, park_id=row.park_id)
    changes = await session.execute(
        sa.select(change_t)
        .where(change_t.c.scenario_id == scenario_id)
        .order_by(change_t.c.position)
    )
    return StoredScenario(
        id=row.id,
        park_id=row.park_id,
        name=row.name,
        description=row.description,
        period_start=row.period_start,
        period_end=row.period_end,
        created_by=row.created_by,
        changes=tuple(
            ChangeCreate(
                kind=ScenarioChangeKind(c.kind),
                enterprise_id=c.enterprise_id,
                share=c.share,
                material_id=c.material_id,
                partner_id=c.partner_id,
                replaced_material_id=c.replaced_material_id,
            )
            for c in changes
        ),
    )


@dataclass(slots=True)
class Effect:
    """Changes against the baseline over the period (negative = less): kg CO2e, kg of virgin
    material bought, kg of waste to landfill or incineration, m3 of water withdrawn, m3 of
    wastewater sent out, and money per currency."""

    co2e: float = 0.0
    virgin_material: float = 0.0
    waste_to_disposal: float = 0.0
    water_withdrawn: float = 0.0
    wastewater: float = 0.0
    cost: dict[str, float] = field(default_factory=dict)

    def add(self, other: Effect, scale: float = 1.0) -> None:
        self.co2e += other.co2e * scale
        self.virgin_material += other.virgin_material * scale
        self.waste_to_disposal += other.waste_to_disposal * scale
        self.water_withdrawn += other.water_withdrawn * scale
        self.wastewater += other.wastewater * scale
        for currency, amount in other.cost.items():
            self.cost[currency] = self.cost.get(currency, 0.0) + amount * scale

    def frozen(self) -> EffectValue:
        return EffectValue(
            co2e=self.co2e,
            virgin_material=self.virgin_material,
            waste_to_disposal=self.waste_to_disposal,
            water_withdrawn=self.water_withdrawn,
            wastewater=self.wastewater,
            cost=tuple(Money(v, c) for c, v in sorted(self.cost.items())),
        )


@dataclass(frozen=True, slots=True)
class EffectValue:
    co2e: float
    virgin_material: float
    waste_to_disposal: float
    water_withdrawn: float
    wastewater: float
    cost: tuple[Money, ...]


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """One change as evaluated: the baseline flow it acts on and what it moves."""

    position: int
    kind: ScenarioChangeKind
    baseline: float
    moved: float
    unit: str
    missing: tuple[str, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EnterpriseEffect:
    enterprise_id: int
    period: EffectValue
    per_year: EffectValue


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    scenario: StoredScenario
    days: int
    changes: tuple[ChangeResult, ...]
    enterprises: tuple[EnterpriseEffect, ...]
    park: EffectValue
    park_per_year: EffectValue
    missing: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def summary(self) -> str:
        """The seed's shape: "8 solutions: 1.4 trillion VND/yr, 552.9 t CO2e/yr, ..."."""
        y = self.park_per_year

        def saved(value: float) -> float:
            return 0.0 - value  # a saving is a decrease; 0.0 - 0.0 prints as 0.0, not -0.0

        parts = [f"{saved(m.amount):,.0f} {m.currency}/yr" for m in y.cost]
        parts.append(f"{saved(y.co2e) / 1000:,.1f} t CO2e/yr")
        parts.append(f"{saved(y.virgin_material) / 1000:,.1f} t virgin material/yr")
        parts.append(f"{saved(y.waste_to_disposal) / 1000:,.1f} t waste to disposal/yr")
        parts.append(f"{saved(y.water_withdrawn):,.1f} m3 water withdrawn/yr")
        parts.append(f"{saved(y.wastewater):,.1f} m3 wastewater/yr")
        incomplete = " (CO2e partial: factors missing)" if self.missing else ""
        count = len(self.changes)
        return (
            f"{count} solution{'s' if count != 1 else ''} saving " + ", ".join(parts) + incomplete
        )


async def _baseline(
    session: AsyncSession, *, caller: Caller, park_id: int, start: date, end: date
) -> dict[tuple[int, int, int], Any]:
    """Sums per (source, target, material) of the park's flows in the period: one statement."""
    f = flow_t
    valued = sa.case((f.c.value.is_not(None), f.c.quantity), else_=0.0)
    rows = await session.execute(
        sa.select(
            f.c.source_id,
            f.c.target_id,
            f.c.material_id,
            sa.func.sum(f.c.quantity).label("quantity"),
            sa.func.coalesce(sa.func.sum(f.c.value), 0.0).label("value"),
            sa.func.sum(valued).label("valued_quantity"),
            sa.func.min(f.c.currency).label("currency"),
            sa.func.max(f.c.currency).label("other_currency"),
        )
        .where(
            flow_scope(caller, f.c.park_id),
            f.c.park_id == park_id,
            f.c.period_start >= start,
            f.c.period_end <= end,
        )
        .group_by(f.c.source_id, f.c.target_id, f.c.material_id)
    )
    return {(r.source_id, r.target_id, r.material_id): r for r in rows}


@dataclass(slots=True)
class _Book:
    """The baseline sums with the park's nodes and materials, and helpers to select them."""

    sums: dict[tuple[int, int, int], Any]
    nodes: dict[int, Any]
    materials: dict[int, Any]

    def select(
        self,
        *,
        source: int | None = None,
        target: int | None = None,
        material: int | None = None,
        source_kinds: frozenset[NodeKind] | None = None,
        target_kinds: frozenset[NodeKind] | None = None,
        dimension: Dimension | None = None,
        kind: MaterialKind | None = None,
    ) -> list[Any]:
        chosen = []
        for (s, t, m), r in self.sums.items():
            if (source is not None and s != source) or (target is not None and t != target):
                continue
            if material is not None and m != material:
                continue
            if source_kinds is not None and NodeKind(self.nodes[s].kind) not in source_kinds:
                continue
            if target_kinds is not None and NodeKind(self.nodes[t].kind) not in target_kinds:
                continue
            row = self.materials[m]
            if dimension is not None and row.dimension != dimension:
                continue
            if kind is not None and row.kind != kind:
                continue
            chosen.append(r)
        return chosen


def _total(rows: list[Any]) -> float:
    return sum(float(r.quantity) for r in rows)


def _cost(effect: Effect, moved: float, rows: list[Any], label: str, notes: list[str]) -> None:
    price: Price | None
    price, note = price_of(rows)
    if price is None:
        notes.append(f"{label}: {note or 'no price recorded'}, not counted")
    else:
        effect.cost[price.currency] = effect.cost.get(price.currency, 0.0) - moved * price.per_unit


def _evaluate_change(
    change: ChangeCreate, book: _Book, year: int
) -> tuple[float, float, str, dict[int, Effect], list[str], list[str]]:
    """(baseline, moved, unit, effects by enterprise, missing, notes) of one change."""
    effects: dict[int, Effect] = defaultdict(Effect)
    missing: list[str] = []
    notes: list[str] = []
    e = change.enterprise_id
    mine = effects[e]
    outside = frozenset({NodeKind.SUPPLIER})
    if change.kind is ScenarioChangeKind.REROUTE_WASTE:
        assert change.partner_id is not None
        assert change.replaced_material_id is not None
        assert change.material_id is not None
        disposed = book.select(source=e, material=change.material_id, target_kinds=DISPOSAL_NODES)
        bought = book.select(
            target=change.partner_id, material=change.replaced_material_id, source_kinds=outside
        )
        baseline = _total(disposed)
        moved = min(change.share * baseline, _total(bought))
        if change.share * baseline > moved:
            notes.append(f"capped at the {moved:,.1f} kg the neighbour buys")
        theirs = effects[change.partner_id]
        mine.waste_to_disposal -= moved
        theirs.virgin_material -= moved
        waste = book.materials[change.material_id].code
        virgin = book.materials[change.replaced_material_id].code
        purchased = factors.purchased_factor(virgin)
        if purchased is None:
            missing.append(f"{virgin}: no cradle-to-gate factor")
        else:
            theirs.co2e -= moved * purchased.kg_co2e_per_unit
        recycling = factors.recycling_emissions(waste)
        if recycling is None:
            missing.append(f"{waste}: no disposal or reprocessing factor")
        else:
            mine.co2e -= moved * recycling.e_disposal
            theirs.co2e += moved * recycling.e_recycled
        _cost(mine, moved, disposed, f"disposal fee of {waste}", notes)
        _cost(theirs, moved, bought, f"price of {virgin}", notes)
        return baseline, moved, "kg", effects, missing, notes
    if change.kind is ScenarioChangeKind.SOLAR_FOR_GRID:
        grid = book.select(
            target=e,
            material=change.material_id,
            source_kinds=frozenset({NodeKind.GRID}),
            dimension=Dimension.ENERGY,
        )
        baseline = _total(grid)
        moved = change.share * baseline
        try:
            factor = factors.grid_factor(year)
            mine.co2e -= moved * factor.kg_co2_per_kwh
            if factor.is_fallback:
                notes.append(f"grid factor of {factor.year_used} used for {year}")
        except MissingFactorError:
            missing.append(f"electricity: no grid factor for {year}")
        missing.append("rooftop solar electricity: no sourced life-cycle factor")
        _cost(mine, moved, grid, "grid electricity price", notes)
        return baseline, moved, "kWh", effects, missing, notes
    assert change.material_id is not None
    withdrawn = book.select(target=e, material=change.material_id, source_kinds=outside)
    baseline = _total(withdrawn)
    moved = change.share * baseline
    discharged = book.select(source=e, dimension=Dimension.VOLUME, kind=MaterialKind.WASTE)
    less_wastewater = min(moved, _total(discharged))
    mine.water_withdrawn -= moved
    mine.wastewater -= less_wastewater
    water = book.materials[change.material_id].code
    purchased = factors.purchased_factor(water)
    if purchased is None:
        missing.append(f"{water}: no supply factor")
    else:
        mine.co2e -= moved * purchased.kg_co2e_per_unit
    missing.append("wastewater: no treatment factor")
    _cost(mine, moved, withdrawn, f"price of {water}", notes)
    _cost(mine, less_wastewater, discharged, "wastewater fee", notes)
    return baseline, moved, "m3", effects, missing, notes


async def evaluate_scenario(
    session: AsyncSession, scenario_id: int, *, caller: Caller
) -> ScenarioResult:
    """The scenario's changes against its period's baseline (formulas in the module docstring)."""
    scenario = await get_scenario(session, scenario_id, caller=caller)
    await check_park(session, caller=caller, park_id=scenario.park_id)
    book = _Book(
        sums=await _baseline(
            session,
            caller=caller,
            park_id=scenario.park_id,
            start=scenario.period_start,
            end=scenario.period_end,
        ),
        nodes=await _nodes(session, scenario.park_id),
        materials=await _materials(session),
    )
    days = (scenario.period_end - scenario.period_start).days + 1
    scale = DAYS_PER_YEAR / days
    by_enterprise: dict[int, Effect] = defaultdict(Effect)
    results: list[ChangeResult] = []
    all_missing: list[str] = []
    all_notes: list[str] = []
    for position, change in enumerate(scenario.changes):
        baseline, moved, unit, effects, missing, notes = _evaluate_change(
            change, book, scenario.period_end.year
        )
        for enterprise_id, effect in effects.items():
            by_enterprise[enterprise_id].add(effect)
        results.append(
            ChangeResult(position, change.kind, baseline, moved, unit, tuple(missing), tuple(notes))
        )
        all_missing += [m for m in missing if m not in all_missing]
        all_notes += [f"change {position}: {n}" for n in notes]
    park = Effect()
    enterprises = []
    for enterprise_id in sorted(by_enterprise):
        effect = by_enterprise[enterprise_id]
        park.add(effect)
        yearly = Effect()
        yearly.add(effect, scale)
        enterprises.append(EnterpriseEffect(enterprise_id, effect.frozen(), yearly.frozen()))
    park_year = Effect()
    park_year.add(park, scale)
    return ScenarioResult(
        scenario=scenario,
        days=days,
        changes=tuple(results),
        enterprises=tuple(enterprises),
        park=park.frozen(),
        park_per_year=park_year.frozen(),
        missing=tuple(all_missing),
        notes=tuple(all_notes),
    )
