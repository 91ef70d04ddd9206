"""Recycling allocation: cut-off, avoided burden and the EU PEF Circular Footprint Formula.

Pure functions over per-unit emissions (``MaterialEmissions``, kg CO2-eq per unit of material,
or per MJ for the substituted energy) and the shares of recycled content and end-of-life routes.
Formulas as in ``../shared/domain/REFERENCE.md`` §4 (Commission Recommendation (EU) 2021/2279,
Annex IV for the CFF). Every result keeps each term with its formula and value, split into
``burden`` (the footprint) and ``avoided`` (credits, reported beside the footprint and never
netted into it, as the GHG Protocol requires).

Symbols: R1 recycled-content share of the input; R2 share of the material recycled at end of
life; R3 share sent to energy recovery; A allocation of burdens and credits between supplier
and user of recycled material; B the same for energy recovery; Qsin/Qp and Qsout/Qp the
quality of the secondary material entering and leaving, relative to primary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from enum import StrEnum

from lca.errors import RecyclingParameterError

_SUM_TOLERANCE = 1e-9  # shares given as decimals (0.7 + 0.3) may sum to 1 + 1 ulp


class RecyclingMethod(StrEnum):
    CUT_OFF = "cut_off"
    AVOIDED_BURDEN = "avoided_burden"
    CIRCULAR_FOOTPRINT = "circular_footprint"


class TermKind(StrEnum):
    BURDEN = "burden"
    AVOIDED = "avoided"


def _check(name: str, value: float, low: float, high: float = math.inf) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        bounds = f"[{low}, {high}]" if math.isfinite(high) else f"at least {low}"
        raise RecyclingParameterError(
            f"{name} = {value} is outside {bounds}: give a value in that range",
            field=(name,),
        )


@dataclass(frozen=True, slots=True)
class MaterialEmissions:
    """Emissions of the processes the formulas combine, per unit of material (kg CO2-eq/unit).

    e_v: virgin material production (Ev). e_recycled: recycling that produces the recycled
    input (E_recycled). e_recycling_eol: recycling of the material at end of life
    (E_recyclingEoL). e_v_substituted: virgin material the recycled output replaces (E*v;
    ``None`` = e_v). e_disposal: landfill or incineration without recovery (E_D). e_energy_recovery:
    incineration with energy recovery (E_ER). lhv: lower heating value (MJ/unit); x_er_heat,
    x_er_elec: efficiencies turning it into heat and electricity; e_se_heat, e_se_elec: the
    heat and electricity substituted (kg CO2-eq/MJ).
    """

    e_v: float
    e_recycled: float = 0.0
    e_recycling_eol: float = 0.0
    e_v_substituted: float | None = None
    e_disposal: float = 0.0
    e_energy_recovery: float = 0.0
    lhv: float = 0.0
    x_er_heat: float = 0.0
    x_er_elec: float = 0.0
    e_se_heat: float = 0.0
    e_se_elec: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name in ("x_er_heat", "x_er_elec"):
                _check(f.name, value, 0.0, 1.0)
            elif f.name == "lhv":
                _check(f.name, value, 0.0)
            else:
                _check(f.name, value, -math.inf)
        if self.x_er_heat + self.x_er_elec > 1.0 + _SUM_TOLERANCE:
            raise RecyclingParameterError(
                f"x_er_heat + x_er_elec = {self.x_er_heat} + {self.x_er_elec} exceeds 1: "
                "recovery cannot deliver more energy than the heating value",
                field=("x_er_heat + x_er_elec",),
            )

    @property
    def e_v_star(self) -> float:
        return self.e_v if self.e_v_substituted is None else self.e_v_substituted


@dataclass(frozen=True, slots=True)
class CffParameters:
    """Parameters of the Circular Footprint Formula, checked on construction.

    Stored once per material; cut-off and avoided burden read only the R's they need, so any
    method can be computed from the same record.

    A in [0.2, 0.8] (0.5 where no material-specific value applies); B in [0, 1], 0 by default;
    R1, R2, R3 in [0, 1] with R2 + R3 ≤ 1; quality ratios in [0, 1] (1 = as good as primary).
    An out-of-range value raises ``RecyclingParameterError`` whose ``field`` names it.
    """

    r1: float
    r2: float
    r3: float = 0.0
    a: float = 0.5
    b: float = 0.0
    qsin_qp: float = 1.0
    qsout_qp: float = 1.0

    def __post_init__(self) -> None:
        _check("A", self.a, 0.2, 0.8)
        _check("B", self.b, 0.0, 1.0)
        for name, value in (("R1", self.r1), ("R2", self.r2), ("R3", self.r3)):
            _check(name, value, 0.0, 1.0)
        if self.r2 + self.r3 > 1.0 + _SUM_TOLERANCE:
            raise RecyclingParameterError(
                f"R2 + R3 = {self.r2} + {self.r3} exceeds 1: the shares recycled and sent to "
                "energy recovery cannot exceed the whole",
                field=("R2 + R3",),
            )
        _check("Qsin/Qp", self.qsin_qp, 0.0, 1.0)
        _check("Qsout/Qp", self.qsout_qp, 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class Term:
    """One term of a formula: its name, the formula with numbers, its value and side."""

    name: str
    formula: str
    value: float
    kind: TermKind


@dataclass(frozen=True, slots=True)
class RecyclingResult:
    """Emissions per unit of material under one allocation method, term by term.

    ``burden`` is the footprint; ``avoided`` the credits (normally ≤ 0), kept apart.
    ``formula_total`` = burden + avoided is the formula's value as written (what a PEF study
    reports); it is for comparison with such studies, not a footprint.
    """

    method: RecyclingMethod
    terms: tuple[Term, ...]
    emissions: MaterialEmissions
    parameters: CffParameters

    @property
    def burden(self) -> float:
        return math.fsum(t.value for t in self.terms if t.kind is TermKind.BURDEN)

    @property
    def avoided(self) -> float:
        return math.fsum(t.value for t in self.terms if t.kind is TermKind.AVOIDED)

    @property
    def formula_total(self) -> float:
        return math.fsum(t.value for t in self.terms)


def _burden(name: str, formula: str, value: float) -> Term:
    return Term(name, formula, value, TermKind.BURDEN)


def _avoided(name: str, formula: str, value: float) -> Term:
    return Term(name, formula, value, TermKind.AVOIDED)


def cut_off(emissions: MaterialEmissions, parameters: CffParameters) -> RecyclingResult:
    """Cut-off (recycled content; ecoinvent's default): no credit, ever.

    burden = (1−R1)·Ev + R1·E_recycled + (1−R2)·E_D

    The user of secondary material carries only the recycling that produced it
    (R1·E_recycled); material leaving for recycling (R2) leaves burden-free, and whatever is not
    recycled is disposed (E_D; a disposal with energy recovery goes in E_D, its energy
    burden-free). A, B, R3 and the quality ratios are not used.
    """
    e, p = emissions, parameters
    return RecyclingResult(
        RecyclingMethod.CUT_OFF,
        (
            _burden("virgin input", f"(1−{p.r1})·{e.e_v}", (1 - p.r1) * e.e_v),
            _burden("recycled input", f"{p.r1}·{e.e_recycled}", p.r1 * e.e_recycled),
            _burden("disposal", f"(1−{p.r2})·{e.e_disposal}", (1 - p.r2) * e.e_disposal),
        ),
        e,
        p,
    )


def avoided_burden(emissions: MaterialEmissions, parameters: CffParameters) -> RecyclingResult:
    """Avoided burden (end-of-life recycling): recycled input charged as virgin, credit at EoL.

    burden = Ev + (1−R2)·E_D;  avoided = −R2·(E*v − E_recyclingEoL)

    The whole input is charged as virgin whatever its recycled content (R1 is not used); the
    credit nets the end-of-life recycling process against the virgin material it replaces, as
    REFERENCE.md states it, so it is positive (a net burden, still reported under ``avoided``)
    when recycling emits more than it saves. A, B, R3 and the quality ratios are not used.
    """
    e, p = emissions, parameters
    return RecyclingResult(
        RecyclingMethod.AVOIDED_BURDEN,
        (
            _burden("input charged as virgin", f"{e.e_v}", e.e_v),
            _burden("disposal", f"(1−{p.r2})·{e.e_disposal}", (1 - p.r2) * e.e_disposal),
            _avoided(
                "recycling at end of life",
                f"−{p.r2}·({e.e_v_star} − {e.e_recycling_eol})",
                -p.r2 * (e.e_v_star - e.e_recycling_eol),
            ),
        ),
        e,
        p,
    )


def circular_footprint(emissions: MaterialEmissions, parameters: CffParameters) -> RecyclingResult:
    """EU PEF Circular Footprint Formula (Recommendation (EU) 2021/2279), per unit of material.

    material:  (1−R1)·Ev + R1·(A·E_recycled + (1−A)·Ev·Qsin/Qp)
               + (1−A)·R2·(E_recyclingEoL − E*v·Qsout/Qp)
    energy:    + (1−B)·R3·(E_ER − LHV·X_ER,heat·E_SE,heat − LHV·X_ER,elec·E_SE,elec)
    disposal:  + (1−R2−R3)·E_D

    Terms with a minus sign are credits and go to ``avoided``: the virgin material substituted
    at end of life, −(1−A)·R2·E*v·Qsout/Qp, and the energy substituted by recovery,
    −(1−B)·R3·LHV·X_ER,heat·E_SE,heat and −(1−B)·R3·LHV·X_ER,elec·E_SE,elec. Everything else
    is ``burden``: (1−R1)·Ev, R1·A·E_recycled, R1·(1−A)·Ev·Qsin/Qp, (1−A)·R2·E_recyclingEoL,
    (1−B)·R3·E_ER and (1−R2−R3)·E_D. ``formula_total`` equals the formula above.
    """
    e, p = emissions, parameters
    energy = (1 - p.b) * p.r3
    return RecyclingResult(
        RecyclingMethod.CIRCULAR_FOOTPRINT,
        (
            _burden("virgin input", f"(1−{p.r1})·{e.e_v}", (1 - p.r1) * e.e_v),
            _burden(
                "recycled input, recycling share",
                f"{p.r1}·{p.a}·{e.e_recycled}",
                p.r1 * p.a * e.e_recycled,
            ),
            _burden(
                "recycled input, virgin share",
                f"{p.r1}·(1−{p.a})·{e.e_v}·{p.qsin_qp}",
                p.r1 * (1 - p.a) * e.e_v * p.qsin_qp,
            ),
            _burden(
                "recycling at end of life",
                f"(1−{p.a})·{p.r2}·{e.e_recycling_eol}",
                (1 - p.a) * p.r2 * e.e_recycling_eol,
            ),
            _avoided(
                "virgin material substituted",
                f"−(1−{p.a})·{p.r2}·{e.e_v_star}·{p.qsout_qp}",
                -(1 - p.a) * p.r2 * e.e_v_star * p.qsout_qp,
            ),
            _burden(
                "energy recovery",
                f"(1−{p.b})·{p.r3}·{e.e_energy_recovery}",
                energy * e.e_energy_recovery,
            ),
            _avoided(
                "heat substituted",
                f"−(1−{p.b})·{p.r3}·{e.lhv}·{e.x_er_heat}·{e.e_se_heat}",
                -energy * e.lhv * e.x_er_heat * e.e_se_heat,
            ),
            _avoided(
                "electricity substituted",
                f"−(1−{p.b})·{p.r3}·{e.lhv}·{e.x_er_elec}·{e.e_se_elec}",
                -energy * e.lhv * e.x_er_elec * e.e_se_elec,
            ),
            _burden(
                "disposal",
                f"(1−{p.r2}−{p.r3})·{e.e_disposal}",
                (1 - p.r2 - p.r3) * e.e_disposal,
            ),
        ),
        e,
        p,
    )
