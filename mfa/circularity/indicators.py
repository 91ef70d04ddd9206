"""Circularity indicators of a scope (park, enterprise, group) over a period, from the ledger.

Two GROUP BY statements do the summing in the database (``class_sums`` per flow class, and
``_enterprise_sums`` per member enterprise for the MCI); the rest is arithmetic on a few
hundred rows. Quantities are canonical (kg, m3, kWh) and reversals net out, as in
``mfa.balance``. A share whose denominator is zero (nothing flowed) is ``None``, never 0.

**WBCSD Circular Transition Indicators** (CTI v4.0, 2023; REFERENCE.md §3) [verify wording].
Material flows are the judged mass group of ``mfa.balance`` (products, by-products and wastes
in kg), crossing the scope's boundary (``mfa.circularity.scope``)::

    % circular inflow  = Σ m_in,i · c_i / Σ m_in,i,   c_i = 1 if renewable or secondary else 0
    % circular outflow = Σ m_out,j · rp_j · ar_j / Σ m_out,j
    % material circ.   = (M_in·%CI + M_out·%CO) / (M_in + M_out)

Renewable and secondary are the ``Material`` flags, counted once when both are set. For a
waste or by-product rp·ar is 1 when its fate (``waste_fates.csv``) is re-use or recycling and
0 otherwise (energy recovery, incineration, landfill, treatment, handing to a collector); a
product sent to disposal counts 0, to a recycler 1, elsewhere its recovery potential × actual
recovery from ``product_end_of_life.csv`` (0 when absent, named in ``assumptions``).

**% renewable energy** = renewable energy used / energy used (kWh). Energy used = energy
carriers received from outside S + renewable energy made and delivered inside S (rooftop solar
has no recorded input; steam made from gas inside S is counted once, as the gas). Fuels in kg
become kWh with the IPCC 2006 net calorific value: kWh/kg = NCV [TJ/Gg] / 3.6; a fuel without
one is listed in ``unconverted`` and left out of both sums.

**Water circularity** [verify against the CTI guide]: inflow share = circular water used /
water used, where water used = water received from outside S + circular water delivered
inside S, and circular = reclaimed (secondary) or rain (renewable); outflow share = water and
wastewater leaving S that is reused by an enterprise or recycler or sent to treatment, over
all that leaves; water circularity = (W_in·%in + W_out·%out) / (W_in + W_out).

**Waste by fate**: wastes in kg sent by members of S, by fate. A member's waste handed to a
waste-service member (collector, sewerage) is a pass-through: the service's own outflows carry
the fate. Kept inside the park = re-used, recycled or burnt for energy by an enterprise of the
park.

**MCI** (``mfa.circularity.mci``) per product of each member enterprise: M = its output of the
product (kg); the feedstock shares are those of all the enterprise's mass inputs (shared by
mass among its products): F_R = secondary, F_S = renewable and not secondary, F_U = 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from lca.factors import combustion_factors
from mfa.access import Action, Caller, authorize, flow_scope
from mfa.balance import BalanceGroup, balance_group
from mfa.circularity.mci import MciInputs, MciResult, mass_weighted, material_circularity
from mfa.circularity.parameters import (
    DEFAULT_END_OF_LIFE,
    EndOfLife,
    WasteFate,
    WasteFateRule,
    end_of_life_table,
    waste_fate,
    waste_fate_rules,
)
from mfa.circularity.scope import (
    ClassSum,
    FlowSelection,
    Scope,
    ScopeKind,
    class_sums,
    select_flows,
)
from mfa.models import Material, MaterialKind, NodeKind
from mfa.period import check_period
from mfa.reads import MaterialRow, flow_t, materials_by_id
from mfa.units import Dimension

material_t = Material.__table__  # type: ignore[attr-defined]

KWH_PER_MJ = 1 / 3.6
_DISPOSAL = frozenset(
    {NodeKind.LANDFILL, NodeKind.INCINERATION, NodeKind.WASTEWATER_TREATMENT, NodeKind.ATMOSPHERE}
)
_WATER_RETURNED = frozenset({NodeKind.ENTERPRISE, NodeKind.RECYCLER, NodeKind.WASTEWATER_TREATMENT})
_KEPT = frozenset({WasteFate.REUSED, WasteFate.RECYCLED, WasteFate.RECOVERED_FOR_ENERGY})


@dataclass(frozen=True, slots=True)
class Ratio:
    """``value`` = numerator / denominator (None when the denominator is 0), in ``unit``,
    with the ledger entries summed into the denominator."""

    value: float | None
    numerator: float
    denominator: float
    unit: str
    flows: FlowSelection


@dataclass(frozen=True, slots=True)
class MaterialIndicators:
    """CTI: % circular inflow, % circular outflow, % material circularity (kg)."""

    circular_inflow: Ratio
    circular_outflow: Ratio
    material_circularity: Ratio


@dataclass(frozen=True, slots=True)
class Unconverted:
    """Energy carriers left out of the energy sums: no way to express them in kWh."""

    material_id: int
    quantity: float
    unit: str
    reason: str
    flows: FlowSelection


@dataclass(frozen=True, slots=True)
class EnergyIndicators:
    renewable_share: Ratio
    unconverted: tuple[Unconverted, ...]


@dataclass(frozen=True, slots=True)
class WaterIndicators:
    circular_inflow: Ratio
    circular_outflow: Ratio
    water_circularity: Ratio


@dataclass(frozen=True, slots=True)
class FateTotal:
    """kg of waste with one fate, of which ``kept_inside`` by enterprises of the park."""

    fate: WasteFate
    quantity: float
    kept_inside: float
    rules: tuple[str, ...]
    flows: FlowSelection


@dataclass(frozen=True, slots=True)
class WasteIndicators:
    """Waste sent by members, by fate (kg); ``kept_inside`` = kept / total."""

    total: float
    hazardous: float
    fates: tuple[FateTotal, ...]
    kept_inside: Ratio


@dataclass(frozen=True, slots=True)
class ProductMci:
    enterprise_id: int
    material_id: int
    parameters_source: str
    result: MciResult


@dataclass(frozen=True, slots=True)
class EnterpriseMci:
    """Mass-weighted MCI of an enterprise's products; ``feedstock_mass`` = its mass inputs."""

    enterprise_id: int
    mci: float | None
    product_mass: float
    feedstock_mass: float
    feedstock_material_ids: tuple[int, ...]
    products: tuple[ProductMci, ...]


@dataclass(frozen=True, slots=True)
class Circularity:
    """Every indicator of ``scope`` over [period_start, period_end] with what it came from.

    ``mci`` is the mass-weighted MCI over all the scope's products; ``assumptions`` states
    each default applied and each datum missing, naming the materials concerned.
    """

    scope: Scope
    period_start: date
    period_end: date
    material: MaterialIndicators
    energy: EnergyIndicators
    water: WaterIndicators
    waste: WasteIndicators
    enterprises: tuple[EnterpriseMci, ...]
    mci: float | None
    assumptions: tuple[str, ...]


@dataclass(slots=True)
class _Missing:
    """What had to be defaulted, gathered while computing, stated once at the end."""

    recovery: set[str] = field(default_factory=set)
    end_of_life: set[str] = field(default_factory=set)
    virgin: set[int] = field(default_factory=set)

    def notes(self) -> list[str]:
        notes = []
        if self.recovery:
            notes.append(
                "no recovery potential or actual recovery for products "
                f"{', '.join(sorted(self.recovery))}: their outflows count as not recovered "
                "(the CTI's conservative default)"
            )
        if self.end_of_life:
            notes.append(
                f"no end-of-life or utility data for products {', '.join(sorted(self.end_of_life))}"
                ": the MCI takes nothing collected (C = 0), E_C = E_F = 1 and X = 1"
            )
        if self.virgin:
            notes.append(
                f"enterprises {', '.join(map(str, sorted(self.virgin)))} record products but no "
                "mass inputs: their feedstock counts as all virgin in the MCI"
            )
        return notes


class _Builder:
    """Accumulates numerator, denominator and classes of one ratio."""

    def __init__(self) -> None:
        self.numerator = 0.0
        self.denominator = 0.0
        self.sums: list[ClassSum] = []

    def add(self, s: ClassSum, weight: float, quantity: float | None = None) -> None:
        q = s.quantity if quantity is None else quantity
        self.numerator += q * weight
        self.denominator += q
        self.sums.append(s)

    def ratio(self, scope: Scope, start: date, end: date, unit: str) -> Ratio:
        return Ratio(
            value=self.numerator / self.denominator if self.denominator else None,
            numerator=self.numerator,
            denominator=self.denominator,
            unit=unit,
            flows=select_flows(scope, start, end, self.sums),
        )


def _circular(material: MaterialRow) -> bool:
    return material.renewable or material.secondary


def _material_indicators(
    sums: list[ClassSum],
    materials: Mapping[int, MaterialRow],
    rules: tuple[WasteFateRule, ...],
    end_of_life: Mapping[str, EndOfLife],
    missing: _Missing,
    period: tuple[Scope, date, date],
) -> MaterialIndicators:
    inflow, outflow, both = _Builder(), _Builder(), _Builder()
    for s in sums:
        c = s.flow_class
        m = materials[c.material_id]
        if balance_group(m.kind, m.dimension) is not BalanceGroup.MATERIAL:
            continue
        if c.inflow:
            weight = 1.0 if _circular(m) else 0.0
            inflow.add(s, weight)
        elif c.outflow:
            weight = _outflow_weight(c.target_kind, c.target_isic, m, rules, end_of_life, missing)
            outflow.add(s, weight)
        else:
            continue
        both.add(s, weight)
    return MaterialIndicators(
        circular_inflow=inflow.ratio(*period, "kg"),
        circular_outflow=outflow.ratio(*period, "kg"),
        material_circularity=both.ratio(*period, "kg"),
    )


def _outflow_weight(
    kind: NodeKind,
    isic: str | None,
    material: MaterialRow,
    rules: tuple[WasteFateRule, ...],
    end_of_life: Mapping[str, EndOfLife],
    missing: _Missing,
) -> float:
    """rp · ar of an outflow: by fate for residues, from end-of-life data for products."""
    if material.kind is not MaterialKind.PRODUCT:
        fate, _ = waste_fate(rules, kind, isic, material.hs_code)
        return 1.0 if fate.recovered else 0.0
    if kind in _DISPOSAL:
        return 0.0
    if kind is NodeKind.RECYCLER:
        return 1.0
    eol = end_of_life.get(material.code)
    if eol is None:
        missing.recovery.add(material.code)
        return 0.0
    return eol.recovery_potential * eol.actual_recovery


def _kwh_per_unit(material: MaterialRow) -> tuple[float | None, str]:
    if material.dimension is Dimension.ENERGY:
        return 1.0, ""
    if material.dimension is Dimension.MASS:
        factor = combustion_factors(material.code)
        if factor is None or factor.ncv_tj_per_gg is None:
            return None, "no net calorific value in datasets/factors/combustion_ipcc2006.csv"
        # NCV TJ/Gg = MJ/kg; 1 MJ = 1/3.6 kWh.
        return factor.ncv_tj_per_gg * KWH_PER_MJ, ""
    return None, "an energy carrier measured in m3 has no conversion to kWh"


def _energy_indicators(
    sums: list[ClassSum], materials: Mapping[int, MaterialRow], period: tuple[Scope, date, date]
) -> EnergyIndicators:
    used = _Builder()
    skipped: dict[int, list[ClassSum]] = defaultdict(list)
    reasons: dict[int, str] = {}
    for s in sums:
        c = s.flow_class
        m = materials[c.material_id]
        if m.kind is not MaterialKind.ENERGY:
            continue
        if not (c.inflow or (c.internal and m.renewable)):
            continue
        factor, reason = _kwh_per_unit(m)
        if factor is None:
            skipped[m.id].append(s)
            reasons[m.id] = reason
            continue
        used.add(s, 1.0 if m.renewable else 0.0, s.quantity * factor)
    unconverted = tuple(
        Unconverted(
            material_id=material_id,
            quantity=sum(s.quantity for s in group),
            unit="kg" if materials[material_id].dimension is Dimension.MASS else "m3",
            reason=reasons[material_id],
            flows=select_flows(*period, group),
        )
        for material_id, group in sorted(skipped.items())
    )
    return EnergyIndicators(renewable_share=used.ratio(*period, "kWh"), unconverted=unconverted)


def _water_indicators(
    sums: list[ClassSum], materials: Mapping[int, MaterialRow], period: tuple[Scope, date, date]
) -> WaterIndicators:
    inflow, outflow, both = _Builder(), _Builder(), _Builder()
    for s in sums:
        c = s.flow_class
        m = materials[c.material_id]
        if m.dimension is not Dimension.VOLUME:
            continue
        if m.kind is MaterialKind.WATER and (c.inflow or (c.internal and _circular(m))):
            weight = 1.0 if _circular(m) else 0.0
            inflow.add(s, weight)
        elif m.kind in (MaterialKind.WATER, MaterialKind.WASTE) and c.outflow:
            weight = 1.0 if c.target_kind in _WATER_RETURNED else 0.0
            outflow.add(s, weight)
        else:
            continue
        both.add(s, weight)
    return WaterIndicators(
        circular_inflow=inflow.ratio(*period, "m3"),
        circular_outflow=outflow.ratio(*period, "m3"),
        water_circularity=both.ratio(*period, "m3"),
    )


def _waste_indicators(
    sums: list[ClassSum],
    materials: Mapping[int, MaterialRow],
    rules: tuple[WasteFateRule, ...],
    period: tuple[Scope, date, date],
) -> WasteIndicators:
    by_fate: dict[WasteFate, list[ClassSum]] = defaultdict(list)
    fate_rules: dict[WasteFate, set[str]] = defaultdict(set)
    kept = _Builder()
    hazardous = 0.0
    for s in sums:
        c = s.flow_class
        m = materials[c.material_id]
        if not c.source_in or m.kind is not MaterialKind.WASTE or m.dimension is not Dimension.MASS:
            continue
        fate, rule = waste_fate(rules, c.target_kind, c.target_isic, m.hs_code)
        if c.internal and fate is WasteFate.COLLECTED:
            continue  # a pass-through: the collector's own outflows carry the fate
        by_fate[fate].append(s)
        fate_rules[fate].add(rule)
        inside = c.target_kind is NodeKind.ENTERPRISE and fate in _KEPT
        kept.add(s, 1.0 if inside else 0.0)
        if m.hazardous:
            hazardous += s.quantity
    fates = tuple(
        FateTotal(
            fate=fate,
            quantity=sum(s.quantity for s in group),
            kept_inside=sum(
                s.quantity for s in group if s.flow_class.target_kind is NodeKind.ENTERPRISE
            )
            if fate in _KEPT
            else 0.0,
            rules=tuple(sorted(fate_rules[fate])),
            flows=select_flows(*period, group),
        )
        for fate in WasteFate
        if (group := by_fate.get(fate))
    )
    return WasteIndicators(
        total=kept.denominator,
        hazardous=hazardous,
        fates=fates,
        kept_inside=kept.ratio(*period, "kg"),
    )


async def _enterprise_sums(
    session: AsyncSession, *, caller: Caller, scope: Scope, period_start: date, period_end: date
) -> list[Any]:
    """Per member enterprise and material: mass inputs and product outputs (one statement)."""
    f = flow_t.alias("f")
    mass_kinds = [
        MaterialKind.PRODUCT.value,
        MaterialKind.BY_PRODUCT.value,
        MaterialKind.WASTE.value,
    ]
    mass = material_t.c.dimension == Dimension.MASS.value
    feedstock = sa.select(material_t.c.id).where(mass, material_t.c.kind.in_(mass_kinds))
    products = sa.select(material_t.c.id).where(
        mass, material_t.c.kind == MaterialKind.PRODUCT.value
    )
    common = (
        flow_scope(caller, f.c.park_id, parties=(f.c.source_id, f.c.target_id)),
        scope.same_park(f.c.park_id),
        f.c.period_start >= period_start,
        f.c.period_end <= period_end,
    )
    inputs = (
        sa.select(
            f.c.target_id.label("enterprise_id"),
            f.c.material_id,
            sa.literal("in").label("direction"),
            sa.func.sum(f.c.quantity).label("quantity"),
        )
        .where(*common, scope.contains(f.c.target_id), f.c.material_id.in_(feedstock))
        .group_by(f.c.target_id, f.c.material_id)
    )
    outputs = (
        sa.select(
            f.c.source_id.label("enterprise_id"),
            f.c.material_id,
            sa.literal("out").label("direction"),
            sa.func.sum(f.c.quantity).label("quantity"),
        )
        .where(*common, scope.contains(f.c.source_id), f.c.material_id.in_(products))
        .group_by(f.c.source_id, f.c.material_id)
    )
    return list(await session.execute(sa.union_all(inputs, outputs)))


def _mci(
    rows: Iterable[Any],
    materials: Mapping[int, MaterialRow],
    end_of_life: Mapping[str, EndOfLife],
    missing: _Missing,
) -> tuple[EnterpriseMci, ...]:
    inputs: dict[int, dict[int, float]] = defaultdict(dict)
    outputs: dict[int, dict[int, float]] = defaultdict(dict)
    for r in rows:
        (inputs if r.direction == "in" else outputs)[r.enterprise_id][r.material_id] = float(
            r.quantity
        )
    found = []
    for enterprise_id in sorted(set(inputs) | set(outputs)):
        feed = {k: v for k, v in inputs[enterprise_id].items() if v > 0}
        total = sum(feed.values())
        recycled = sum(v for k, v in feed.items() if materials[k].secondary)
        bio = sum(
            v for k, v in feed.items() if materials[k].renewable and not materials[k].secondary
        )
        if total == 0 and outputs[enterprise_id]:
            missing.virgin.add(enterprise_id)
        products = []
        for material_id, mass in sorted(outputs[enterprise_id].items()):
            if mass <= 0:
                continue
            code = materials[material_id].code
            eol = end_of_life.get(code)
            if eol is None:
                missing.end_of_life.add(code)
            eol = eol or DEFAULT_END_OF_LIFE
            result = material_circularity(
                MciInputs(
                    mass=mass,
                    recycled_feedstock=recycled / total if total else 0.0,
                    reused_feedstock=0.0,
                    sustainable_bio_feedstock=bio / total if total else 0.0,
                    end_of_life=eol,
                )
            )
            products.append(ProductMci(enterprise_id, material_id, eol.source, result))
        found.append(
            EnterpriseMci(
                enterprise_id=enterprise_id,
                mci=mass_weighted([p.result for p in products]),
                product_mass=sum(p.result.inputs.mass for p in products),
                feedstock_mass=total,
                feedstock_material_ids=tuple(sorted(feed)),
                products=tuple(products),
            )
        )
    return tuple(found)


BASE_ASSUMPTIONS = (
    "materials flagged renewable are taken as sustainably sourced (the CTI counts only those)",
    "secondary content counts as recycled feedstock (F_R); none as reused (F_U)",
    "energy recovery and incineration are not circular outflows (CTI)",
    "water and wastewater sent to treatment are taken as returned at suitable quality: the "
    "ledger holds no quality data",
    "waste handed to a waste-service enterprise outside the scope counts as not recovered: "
    "its onward fate is in the service's own flows",
)


async def circularity(
    session: AsyncSession,
    *,
    caller: Caller,
    scope: Scope,
    period_start: date,
    period_end: date,
    end_of_life: Mapping[str, EndOfLife] | None = None,
    fate_rules: tuple[WasteFateRule, ...] | None = None,
) -> Circularity:
    """Every indicator of ``scope`` over the period (see the module docstring).

    ``end_of_life`` and ``fate_rules`` default to the tables in ``datasets/circularity``.
    Three statements whatever the number of flows: the class sums, the per-enterprise sums
    and the catalogue rows of the materials met. Raises ``PeriodError`` for a period that
    ends before it starts.
    """
    check_period(period_start, period_end)
    authorize(
        caller,
        Action.READ,
        park_id=scope.park_id,
        node_id=scope.enterprise_ids[0] if scope.kind is ScopeKind.ENTERPRISE else None,
    )
    eol = end_of_life_table() if end_of_life is None else end_of_life
    rules = waste_fate_rules() if fate_rules is None else fate_rules
    sums = await class_sums(
        session, caller=caller, scope=scope, period_start=period_start, period_end=period_end
    )
    enterprise_rows = await _enterprise_sums(
        session, caller=caller, scope=scope, period_start=period_start, period_end=period_end
    )
    material_ids = {s.flow_class.material_id for s in sums} | {
        r.material_id for r in enterprise_rows
    }
    materials = await materials_by_id(session, material_ids, caller=caller)
    missing = _Missing()
    period = (scope, period_start, period_end)
    material = _material_indicators(sums, materials, rules, eol, missing, period)
    energy = _energy_indicators(sums, materials, period)
    enterprises = _mci(enterprise_rows, materials, eol, missing)
    notes = missing.notes()
    for u in energy.unconverted:
        notes.append(
            f"energy carrier '{materials[u.material_id].code}' left out of the energy sums: "
            f"{u.reason}"
        )
    products = [p.result for e in enterprises for p in e.products]
    return Circularity(
        scope=scope,
        period_start=period_start,
        period_end=period_end,
        material=material,
        energy=energy,
        water=_water_indicators(sums, materials, period),
        waste=_waste_indicators(sums, materials, rules, period),
        enterprises=enterprises,
        mci=mass_weighted(products),
        assumptions=BASE_ASSUMPTIONS + tuple(notes),
    )
