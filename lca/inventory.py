"""From the ledger to a life-cycle inventory: activities, exchanges per unit, and what is missing.

For a park and period (see ``../shared/domain/LCA-MAPPING.md``):

* every (enterprise, material) it output of kind product, by-product, energy or water is a
  **production activity** whose reference product is one canonical unit (kg, m3, kWh) and whose
  output q_i is the enterprise's total output of it in the period;
* the enterprise's recorded inputs and direct emissions are shared among its activities by
  allocation factors f_i (Σ f_i = 1): the coefficient of input k per unit of product i is
  ``a_ki = x_k · f_i / q_i``;
* purchases from outside the park and grid electricity link to **background activities**
  (one per material, one per grid year) carrying the factors shipped in ``datasets/factors``;
* waste sent to treatment outside the park links to a **treatment activity** (one per waste
  material and treatment kind); waste sent to a neighbour leaves burden-free and arrives
  burden-free (cut-off), so no exchange links them;
* emissions reported to the atmosphere node and the combustion of recorded fuels (IPCC 2006
  defaults, unless the enterprise reports that gas itself) are biosphere exchanges.

Background and treatment activities with no factor are kept with no emissions and listed in
``missing``, so a footprint says which part of it rests on nothing rather than silently
counting it as zero. This module builds plain data; ``lca.model`` turns it into matrices.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from lca import factors
from lca import recycling as recycling_formulas
from lca.characterisation import CO2_FOSSIL, CO2E_AGGREGATED, ElementaryFlow, elementary_flows
from lca.errors import MissingFactorError
from lca.parameters import ParametersInForce, parameters_in_force
from lca.recycling import CffParameters, RecyclingMethod
from mfa.access import Caller, flow_scope
from mfa.models import Flow, Material, MaterialKind, NodeKind, ParkNode
from mfa.period import check_period
from mfa.units import CANONICAL_UNIT, Dimension

_PRODUCT_KINDS = frozenset(
    {MaterialKind.PRODUCT, MaterialKind.BY_PRODUCT, MaterialKind.ENERGY, MaterialKind.WATER}
)
_TREATMENT_NODES = frozenset(
    {NodeKind.LANDFILL, NodeKind.INCINERATION, NodeKind.WASTEWATER_TREATMENT, NodeKind.RECYCLER}
)
_PURCHASE_NODES = frozenset({NodeKind.SUPPLIER, NodeKind.GRID, NodeKind.RECYCLER})


class ActivityKind(StrEnum):
    PRODUCTION = "production"
    OPERATION = "operation"
    RECYCLING = "recycling"
    PURCHASE = "purchase"
    GRID = "grid"
    TREATMENT = "treatment"


class Allocation(StrEnum):
    """How an enterprise's inputs and emissions are shared among its products.

    ``MASS``: by quantity (products of one dimension); ``ECONOMIC``: by invoiced value, where
    every output flow of every product carries one, in one currency; user shares, where
    given, override both for that enterprise.
    """

    MASS = "mass"
    ECONOMIC = "economic"


@dataclass(frozen=True, slots=True)
class Activity:
    """One column of the technosphere: produces one unit of ``material`` (``unit``).

    An ``OPERATION`` activity stands for an enterprise that records no product (a waste
    collector): one unit is its whole operation in the period, and it has no material.
    """

    index: int
    key: str
    kind: ActivityKind
    material_id: int | None
    material_code: str
    unit: str
    material_kind: MaterialKind | None
    enterprise_id: int | None = None
    enterprise_code: str | None = None
    output: float = 1.0


@dataclass(frozen=True, slots=True)
class TechnosphereExchange:
    """``amount`` units of activity ``supplier`` go into one unit of activity ``consumer``."""

    supplier: int
    consumer: int
    amount: float


@dataclass(frozen=True, slots=True)
class BiosphereExchange:
    """``amount`` kg of elementary flow ``flow`` emitted per unit of activity ``activity``."""

    flow: str
    activity: int
    amount: float
    origin: str


@dataclass(frozen=True, slots=True)
class MissingFactor:
    """Something the model cannot characterise: it counts as zero, and says so."""

    material_code: str
    reason: str
    quantity: float
    unit: str
    enterprises: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParkInventory:
    park_id: int
    period_start: date
    period_end: date
    activities: tuple[Activity, ...]
    technosphere: tuple[TechnosphereExchange, ...]
    biosphere: tuple[BiosphereExchange, ...]
    flows: dict[str, ElementaryFlow]
    missing: tuple[MissingFactor, ...]
    notes: tuple[str, ...]
    allocation: dict[int, dict[int, float]] = field(default_factory=dict)
    links: tuple[tuple[int, str, str], ...] = ()
    """Purchase activities supplied by a linked Brightway activity: (index, database, code)."""
    background_project: str | None = None

    def activity(self, key: str) -> Activity:
        for activity in self.activities:
            if activity.key == key:
                return activity
        raise KeyError(key)


@dataclass(frozen=True, slots=True)
class _Node:
    id: int
    code: str
    kind: NodeKind


@dataclass(frozen=True, slots=True)
class _Material:
    id: int
    code: str
    kind: MaterialKind
    dimension: Dimension
    link: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class _Value:
    """The invoiced value of an enterprise's output of a material (all of it, or not)."""

    value: float
    complete: bool
    currencies: set[str]


@dataclass(slots=True)
class _Builder:
    activities: list[Activity] = field(default_factory=list)
    by_key: dict[str, int] = field(default_factory=dict)
    technosphere: list[TechnosphereExchange] = field(default_factory=list)
    biosphere: list[BiosphereExchange] = field(default_factory=list)
    missing: dict[tuple[str, str], list[object]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    links: dict[int, tuple[str, str]] = field(default_factory=dict)
    background_project: str | None = None

    def add(self, key: str, **values: object) -> int:
        if key not in self.by_key:
            index = len(self.activities)
            self.activities.append(Activity(index=index, key=key, **values))  # type: ignore[arg-type]
            self.by_key[key] = index
        return self.by_key[key]

    def miss(self, material: _Material, reason: str, quantity: float, enterprise: str) -> None:
        entry = self.missing.setdefault(
            (material.code, reason), [0.0, CANONICAL_UNIT[material.dimension], set()]
        )
        entry[0] = float(entry[0]) + quantity  # type: ignore[arg-type]
        entry[2].add(enterprise)  # type: ignore[attr-defined]


async def _load(
    session: AsyncSession, *, caller: Caller, park_id: int, start: date, end: date
) -> tuple[
    dict[int, _Node],
    dict[int, _Material],
    list[tuple[int, int, int, float]],
    dict[tuple[int, int], _Value],
]:
    node_t = ParkNode.__table__  # type: ignore[attr-defined]
    material_t = Material.__table__  # type: ignore[attr-defined]
    flow_t = Flow.__table__  # type: ignore[attr-defined]
    nodes = {
        r.id: _Node(r.id, r.code, NodeKind(r.kind))
        for r in await session.execute(
            sa.select(node_t.c.id, node_t.c.code, node_t.c.kind).where(node_t.c.park_id == park_id)
        )
    }
    materials = {
        r.id: _Material(
            r.id,
            r.code,
            MaterialKind(r.kind),
            Dimension(r.dimension),
            (r.brightway_database, r.brightway_code) if r.brightway_database else None,
        )
        for r in await session.execute(
            sa.select(
                material_t.c.id,
                material_t.c.code,
                material_t.c.kind,
                material_t.c.dimension,
                material_t.c.brightway_database,
                material_t.c.brightway_code,
            )
        )
    }
    sums = await session.execute(
        sa.select(
            flow_t.c.source_id,
            flow_t.c.target_id,
            flow_t.c.material_id,
            sa.func.sum(flow_t.c.quantity).label("quantity"),
            sa.func.sum(flow_t.c.value).label("value"),
            sa.func.count(flow_t.c.value).label("valued"),
            sa.func.count().label("entries"),
            sa.func.min(flow_t.c.currency).label("currency"),
            sa.func.max(flow_t.c.currency).label("other_currency"),
        )
        .where(
            flow_scope(caller, flow_t.c.park_id),
            flow_t.c.park_id == park_id,
            flow_t.c.period_start >= start,
            flow_t.c.period_end <= end,
        )
        .group_by(flow_t.c.source_id, flow_t.c.target_id, flow_t.c.material_id)
        .order_by(flow_t.c.source_id, flow_t.c.target_id, flow_t.c.material_id)
    )
    rows = sums.all()
    values: dict[tuple[int, int], _Value] = {}
    for r in rows:
        if not r.quantity:
            continue
        known = values.get((r.source_id, r.material_id), _Value(0.0, True, set()))
        values[(r.source_id, r.material_id)] = _Value(
            known.value + float(r.value or 0.0),
            known.complete and r.valued == r.entries,
            known.currencies | {c for c in (r.currency, r.other_currency) if c},
        )
    return nodes, materials, [(r[0], r[1], r[2], float(r[3])) for r in rows if r[3]], values


def allocation_factors(
    outputs: dict[int, float],
    dimensions: dict[int, Dimension],
    *,
    method: Allocation = Allocation.MASS,
    values: dict[int, _Value] | None = None,
    shares: dict[int, float] | None = None,
) -> tuple[dict[int, float], str | None]:
    """Factors f_i (Σ = 1) for one enterprise's products, and a note when a fallback was used.

    User shares s_i: f_i = s_i / Σ s_j. Economic: f_i = V_i / Σ V_j, V_i the invoiced value of
    product i's outputs, when every output is valued in one currency (else mass, noted). Mass:
    f_i = q_i / Σ q_j, for products of one dimension; products of several dimensions cannot
    share by mass and are split equally, and the note says so.
    """
    if shares:
        total = sum(shares.get(i, 0.0) for i in outputs)
        if total > 0:
            return {i: shares.get(i, 0.0) / total for i in outputs}, None
    note = None
    if method is Allocation.ECONOMIC:
        found = [(values or {}).get(i) for i in outputs]
        currencies = set().union(*(v.currencies for v in found if v is not None))
        if all(v is not None and v.complete for v in found) and len(currencies) == 1:
            total = sum(v.value for v in found if v is not None)
            if total > 0:
                return {i: (values or {})[i].value / total for i in outputs}, None
        note = "economic allocation needs every output valued in one currency: mass used"
    if len({dimensions[i] for i in outputs}) == 1:
        total = sum(outputs.values())
        if total > 0:
            return {i: q / total for i, q in outputs.items()}, note
    equal = 1.0 / len(outputs)
    return {i: equal for i in outputs}, "products of several dimensions: split equally"


async def build_inventory(
    session: AsyncSession,
    *,
    caller: Caller,
    park_id: int,
    period_start: date,
    period_end: date,
    allocation: Allocation = Allocation.MASS,
    shares: dict[int, dict[int, float]] | None = None,
    recycling: RecyclingMethod = RecyclingMethod.CUT_OFF,
    background_project: str | None = None,
) -> ParkInventory:
    """The park's inventory for [period_start, period_end] (inclusive).

    ``background_project``: purchases of materials linked to a Brightway activity are supplied
    by that project's activity (``lca.linking``) instead of a factor from ``datasets``.

    ``recycling``: cut-off links inputs as the ledger records them (purchases to their
    factors, a neighbour's waste burden-free). Avoided burden and the Circular Footprint Formula
    replace the link of every input bought from outside or received as a neighbour's waste
    whose material (or flow) has recycling parameters: it then carries the method's burden per
    unit, and the method's credits go on the ``AVOIDED_CO2E`` flow, reported beside the score
    and never netted into it.

    ``shares`` maps enterprise id → {material id: allocation share} to override mass
    allocation for that enterprise.
    """
    check_period(period_start, period_end)
    nodes, materials, sums, output_values = await _load(
        session, caller=caller, park_id=park_id, start=period_start, end=period_end
    )
    flows = elementary_flows()
    b = _Builder(background_project=background_project)
    in_force = None
    if recycling is not RecyclingMethod.CUT_OFF:
        in_force = await parameters_in_force(
            session,
            caller=caller,
            park_id=park_id,
            period_start=period_start,
            period_end=period_end,
            material_ids={m for _, _, m, _ in sums},
        )

    def is_enterprise(node_id: int) -> bool:
        return nodes[node_id].kind is NodeKind.ENTERPRISE

    outputs: dict[int, dict[int, float]] = defaultdict(dict)
    for source, target, material_id, quantity in sums:
        material = materials[material_id]
        if is_enterprise(source) and material.kind in _PRODUCT_KINDS and quantity > 0:
            if nodes[target].kind is NodeKind.ATMOSPHERE:
                continue
            outputs[source][material_id] = outputs[source].get(material_id, 0.0) + quantity
    for enterprise_id in sorted(outputs):
        for material_id in sorted(outputs[enterprise_id]):
            m, e = materials[material_id], nodes[enterprise_id]
            b.add(
                f"production:{e.code}:{m.code}",
                kind=ActivityKind.PRODUCTION,
                material_id=m.id,
                material_code=m.code,
                material_kind=m.kind,
                unit=CANONICAL_UNIT[m.dimension],
                enterprise_id=e.id,
                enterprise_code=e.code,
                output=outputs[enterprise_id][material_id],
            )
    operated = sorted(
        {n for s, t, _, q in sums for n in (s, t) if q > 0 and is_enterprise(n)} - set(outputs)
    )
    for enterprise_id in operated:
        e = nodes[enterprise_id]
        b.add(
            f"operation:{e.code}",
            kind=ActivityKind.OPERATION,
            material_id=None,
            material_code="operation",
            material_kind=None,
            unit="period",
            enterprise_id=e.id,
            enterprise_code=e.code,
        )
        b.notes.append(
            f"{e.code} records no product: its inputs and emissions form one operation "
            "activity (one unit = its whole period)"
        )
    allocation_by: dict[int, dict[int, float]] = {}
    for enterprise_id, products in outputs.items():
        factors_, note = allocation_factors(
            products,
            {m: materials[m].dimension for m in products},
            method=allocation,
            values={
                m: v for (e, m), v in output_values.items() if e == enterprise_id and m in products
            },
            shares=(shares or {}).get(enterprise_id),
        )
        allocation_by[enterprise_id] = factors_
        if note:
            b.notes.append(f"{nodes[enterprise_id].code}: {note}")

    reported_gases: dict[int, set[str]] = defaultdict(set)
    for source, target, material_id, quantity in sums:
        if nodes[target].kind is NodeKind.ATMOSPHERE and quantity > 0:
            reported_gases[source].add(materials[material_id].code)

    def spread(enterprise_id: int, quantity: float) -> list[tuple[int, float]]:
        """(activity index, amount per unit of its product) for an enterprise-level amount."""
        e = nodes[enterprise_id]
        if f"operation:{e.code}" in b.by_key:
            return [(b.by_key[f"operation:{e.code}"], quantity)]
        return [
            (
                b.by_key[f"production:{e.code}:{materials[m].code}"],
                quantity * f / outputs[enterprise_id][m],
            )
            for m, f in allocation_by.get(enterprise_id, {}).items()
        ]

    for source, target, material_id, quantity in sums:
        if quantity <= 0:
            continue
        m = materials[material_id]
        src, tgt = nodes[source], nodes[target]
        if tgt.kind is NodeKind.ENTERPRISE and source != target:
            consumers = spread(target, quantity)
            supplier = None
            if in_force is not None and f"production:{src.code}:{m.code}" not in b.by_key:
                supplier = _recycled_input(b, recycling, in_force, src, tgt, m, quantity)
            if supplier is None:
                supplier = _supplier(b, src, m, materials, quantity, tgt.code, period_end)
            if supplier is not None:
                for consumer, amount in consumers:
                    b.technosphere.append(TechnosphereExchange(supplier, consumer, amount))
            _combustion(b, m, quantity, tgt, consumers, reported_gases[target], flows)
        elif src.kind is NodeKind.ENTERPRISE:
            consumers = spread(source, quantity)
            if not consumers:
                continue
            if tgt.kind is NodeKind.ATMOSPHERE:
                flow = flows.get(m.code)
                if flow is None:
                    b.miss(m, "no elementary flow for this emission", quantity, src.code)
                    continue
                for consumer, amount in consumers:
                    b.biosphere.append(
                        BiosphereExchange(flow.uuid, consumer, amount, f"reported by {src.code}")
                    )
            elif tgt.kind in _TREATMENT_NODES and m.kind is MaterialKind.WASTE:
                treatment = b.add(
                    f"treatment:{tgt.kind.value}:{m.code}",
                    kind=ActivityKind.TREATMENT,
                    material_id=m.id,
                    material_code=m.code,
                    material_kind=m.kind,
                    unit=CANONICAL_UNIT[m.dimension],
                )
                b.miss(m, f"no {tgt.kind.value} factor", quantity, src.code)
                for consumer, amount in consumers:
                    b.technosphere.append(TechnosphereExchange(treatment, consumer, amount))

    missing = tuple(
        MissingFactor(code, reason, float(entry[0]), str(entry[1]), tuple(sorted(entry[2])))  # type: ignore[arg-type, call-overload]
        for (code, reason), entry in sorted(b.missing.items())
    )
    return ParkInventory(
        park_id=park_id,
        period_start=period_start,
        period_end=period_end,
        activities=tuple(b.activities),
        technosphere=tuple(b.technosphere),
        biosphere=tuple(b.biosphere),
        flows=flows,
        missing=missing,
        notes=tuple(b.notes),
        allocation=allocation_by,
        links=tuple((index, db, code) for index, (db, code) in sorted(b.links.items())),
        background_project=background_project if b.links else None,
    )


def _supplier(
    b: _Builder,
    source: _Node,
    material: _Material,
    materials: dict[int, _Material],
    quantity: float,
    consumer_code: str,
    period_end: date,
) -> int | None:
    """The activity supplying an input, or None when nothing links (cut-off waste)."""
    if source.kind is NodeKind.ENTERPRISE:
        key = f"production:{source.code}:{material.code}"
        return b.by_key.get(key)  # waste from a neighbour: burden-free under cut-off
    if source.kind not in _PURCHASE_NODES:
        return None
    unit = CANONICAL_UNIT[material.dimension]
    if source.kind is NodeKind.GRID and material.dimension is Dimension.ENERGY:
        try:
            grid = factors.grid_factor(period_end.year)
        except MissingFactorError:
            b.miss(material, "no grid factor for the year", quantity, consumer_code)
            return b.add(
                f"grid:{material.code}",
                kind=ActivityKind.GRID,
                material_id=material.id,
                material_code=material.code,
                material_kind=material.kind,
                unit=unit,
            )
        index = b.add(
            f"grid:{material.code}:{grid.year_used}",
            kind=ActivityKind.GRID,
            material_id=material.id,
            material_code=material.code,
            material_kind=material.kind,
            unit=unit,
        )
        if not any(x.activity == index for x in b.biosphere):
            b.biosphere.append(
                BiosphereExchange(
                    CO2_FOSSIL,
                    index,
                    grid.kg_co2_per_kwh,
                    f"grid factor {grid.year_used}: {grid.source}",
                )
            )
        if grid.year_used != period_end.year:
            note = f"grid factor of {grid.year_used} used for {period_end.year}"
            if note not in b.notes:
                b.notes.append(note)
        return index
    index = b.add(
        f"purchase:{material.code}",
        kind=ActivityKind.PURCHASE,
        material_id=material.id,
        material_code=material.code,
        material_kind=material.kind,
        unit=unit,
    )
    if b.background_project is not None and material.link is not None:
        b.links[index] = material.link  # supplied by the Brightway project's activity
        return index
    purchased = factors.purchased_factor(material.code)
    if purchased is None:
        b.miss(material, "no cradle-to-gate factor", quantity, consumer_code)
    elif not any(x.activity == index for x in b.biosphere):
        b.biosphere.append(
            BiosphereExchange(CO2E_AGGREGATED, index, purchased.kg_co2e_per_unit, purchased.source)
        )
    return index


def _combustion(
    b: _Builder,
    material: _Material,
    quantity: float,
    consumer: _Node,
    consumers: list[tuple[int, float]],
    reported: set[str],
    flows: dict[str, ElementaryFlow],
) -> None:
    """Combustion emissions of a fuel input at the consumer, unless it reports the gas."""
    if material.kind is not MaterialKind.ENERGY or material.dimension is not Dimension.MASS:
        return
    combustion = factors.combustion_factors(material.code)
    if combustion is None:
        b.miss(material, "no combustion factor", quantity, consumer.code)
        return
    for gas, per_kg in combustion.emissions_per_kg().items():
        if gas in reported:
            note = f"{consumer.code}: reported {gas} used instead of computed combustion"
            if note not in b.notes:
                b.notes.append(note)
            continue
        flow = flows.get(gas)
        if flow is None:
            b.miss(material, f"no elementary flow for {gas}", quantity, consumer.code)
            continue
        for activity, amount in consumers:
            b.biosphere.append(
                BiosphereExchange(
                    flow.uuid, activity, amount * per_kg, f"IPCC 2006 combustion of {material.code}"
                )
            )


AVOIDED_CO2E: Final = str(
    uuid.uuid5(uuid.NAMESPACE_URL, "urn:circular-mfa:elementary-flow:avoided")
)
"""Pseudo-flow carrying avoided emissions (kg CO2e, negative for a credit); never characterised
into a score."""

_METHODS: Final = {
    RecyclingMethod.CUT_OFF: recycling_formulas.cut_off,
    RecyclingMethod.AVOIDED_BURDEN: recycling_formulas.avoided_burden,
    RecyclingMethod.CIRCULAR_FOOTPRINT: recycling_formulas.circular_footprint,
}
_NO_RECYCLING: Final = CffParameters(r1=0.0, r2=0.0)


def _recycled_input(
    b: _Builder,
    method: RecyclingMethod,
    in_force: ParametersInForce,
    source: _Node,
    consumer: _Node,
    material: _Material,
    quantity: float,
) -> int | None:
    """The activity carrying an input's burden under ``method``, or None (cut-off applies).

    Per unit: burden = Σ_f q_f·burden(p_f) / Σ_f q_f over the group's flows, p_f the flow's
    own parameters or the material's; a flow with neither has no recycled content and is not
    recycled (R1 = R2 = 0). Likewise for the avoided credits.
    """
    overrides = [
        (q, p)
        for s_id, t_id, m_id, q, p in in_force.by_flow.values()
        if (s_id, t_id, m_id) == (source.id, consumer.id, material.id)
    ]
    default = in_force.by_material.get(material.id)
    if default is None and not overrides:
        return None
    emissions = factors.recycling_emissions(material.code)
    if emissions is None:
        b.miss(material, "no recycling emission data", quantity, consumer.code)
        return None
    formula = _METHODS[method]
    parts = [*overrides, (quantity - sum(q for q, _ in overrides), default or _NO_RECYCLING)]
    results = [(q, formula(emissions, p)) for q, p in parts if q]
    burden = sum(q * r.burden for q, r in results) / quantity
    avoided = sum(q * r.avoided for q, r in results) / quantity
    index = b.add(
        f"recycling:{method.value}:{material.code}:{source.code}>{consumer.code}",
        kind=ActivityKind.RECYCLING,
        material_id=material.id,
        material_code=material.code,
        material_kind=material.kind,
        unit=CANONICAL_UNIT[material.dimension],
    )
    origin = f"{method.value} of {material.code}"
    b.biosphere.append(BiosphereExchange(CO2E_AGGREGATED, index, burden, origin))
    if avoided:
        b.biosphere.append(BiosphereExchange(AVOIDED_CO2E, index, avoided, origin))
    return index
