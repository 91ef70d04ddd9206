"""The eco-industrial park scorecard: each criterion of ``datasets/eip_criteria.csv`` judged.

A criterion compares one indicator of the park over a period with a threshold::

    MET           value <comparator> threshold holds
    NOT_MET       it does not
    CANNOT_JUDGE  the value or the threshold is missing; ``missing`` says which and why

Criteria are data (REFERENCE.md §2): Vietnam's decree criteria come with their thresholds,
the international framework's environmental topics with none, so a park sets its own
(``thresholds``) and until then they cannot be judged. The indicators the ledger can give
come from ``mfa.circularity``; the others (cleaner-production adoption, land use, plans, and
GHG emissions, which come from the LCA's ``parkEmissions``) are named as missing data.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from lca.characterisation import read_rows
from mfa.access import Caller
from mfa.circularity import Circularity, Scope, ScopeKind, WasteFate, circularity
from mfa.circularity.links import Participation, participation
from mfa.errors import MfaError, NotFoundError
from mfa.reads import parks_by_id
from mfa.settings import get_settings


class Verdict(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    CANNOT_JUDGE = "cannot_judge"


COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "=": operator.eq,
}


@dataclass(frozen=True, slots=True)
class Criterion:
    """A row of ``eip_criteria.csv``; ``threshold`` None means the park must set it."""

    id: str
    category: str
    topic: str
    indicator: str
    comparator: str
    threshold: float | None
    unit: str
    source: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A criterion judged: the value found, the threshold in force, and why.

    ``threshold_set_by_park`` is True when ``thresholds`` gave it rather than the data file.
    ``basis`` says how the value was computed; ``missing`` names what prevents judging.
    """

    criterion: Criterion
    value: float | None
    threshold: float | None
    threshold_set_by_park: bool
    verdict: Verdict
    basis: str
    missing: str | None


@dataclass(frozen=True, slots=True)
class Scorecard:
    """Every criterion judged for a park and period, with the figures it used."""

    park_id: int
    period_start: date
    period_end: date
    evaluations: tuple[Evaluation, ...]
    circularity: Circularity
    participation: Participation


def _criterion(row: dict[str, str]) -> Criterion:
    if row["comparator"] not in COMPARATORS:
        raise ValueError(f"comparator {row['comparator']!r} is not one of {', '.join(COMPARATORS)}")
    threshold = row["threshold"].strip()
    return Criterion(
        id=row["id"],
        category=row["category"],
        topic=row["topic"],
        indicator=row["indicator"],
        comparator=row["comparator"],
        threshold=float(threshold) if threshold else None,
        unit=row["unit"],
        source=row["source"],
    )


@cache
def _criteria(path: Path) -> tuple[Criterion, ...]:
    return tuple(read_rows(path, _criterion))


def criteria() -> tuple[Criterion, ...]:
    """The criteria of ``datasets/eip_criteria.csv``, in file order."""
    return _criteria(get_settings().datasets_dir / "eip_criteria.csv")


# indicator → (value from the figures, or None, how it is computed / why it is missing)
_Figures = tuple[Circularity, Participation]
_COMPUTED: dict[str, tuple[Callable[[_Figures], float | None], str]] = {
    "symbiosis_link_count": (
        lambda f: float(len(f[1].links)),
        "transfers between enterprises of residues, secondary content, energy or water "
        "(mfa.circularity.links)",
    ),
    "symbiosis_enterprise_share": (
        lambda f: f[1].share,
        "enterprises at either end of a symbiosis link / enterprises of the park",
    ),
    "flow_reporting_share": (
        lambda f: f[1].reporting_share,
        "enterprises with flows in the period / enterprises of the park",
    ),
    "renewable_energy_share": (
        lambda f: f[0].energy.renewable_share.value,
        "WBCSD CTI % renewable energy of the park",
    ),
    "water_circularity": (
        lambda f: f[0].water.water_circularity.value,
        "WBCSD CTI water circularity of the park",
    ),
    "material_circularity": (
        lambda f: f[0].material.material_circularity.value,
        "WBCSD CTI % material circularity of the park",
    ),
    "waste_kept_inside_share": (
        lambda f: f[0].waste.kept_inside.value,
        "waste re-used, recycled or recovered for energy inside the park / waste",
    ),
    "waste_landfilled_share": (
        lambda f: (
            sum(t.quantity for t in f[0].waste.fates if t.fate is WasteFate.LANDFILLED)
            / f[0].waste.total
            if f[0].waste.total
            else None
        ),
        "waste landfilled / waste",
    ),
}

NOT_IN_LEDGER: dict[str, str] = {
    "cleaner_production_share": "which enterprises apply resource efficiency and cleaner "
    "production is not recorded in the ledger (an assessment register is needed)",
    "shared_land_share": "the park's land use (green space, transport, shared infrastructure) "
    "is not recorded",
    "natural_environment_plan": "the park's natural-environment and climate-resilience plan "
    "is not recorded",
    "ghg_emissions": "GHG emissions come from the LCA (parkEmissions); the scorecard does not "
    "run an LCA solve",
}


def judge(criterion: Criterion, value: float | None, threshold: float | None) -> Verdict:
    """MET / NOT_MET when both numbers are known, else CANNOT_JUDGE."""
    if value is None or threshold is None:
        return Verdict.CANNOT_JUDGE
    return Verdict.MET if COMPARATORS[criterion.comparator](value, threshold) else Verdict.NOT_MET


def _evaluate(
    criterion: Criterion, figures: _Figures, thresholds: Mapping[str, float]
) -> Evaluation:
    by_park = criterion.id in thresholds
    threshold = thresholds[criterion.id] if by_park else criterion.threshold
    computed = _COMPUTED.get(criterion.indicator)
    missing: list[str] = []
    if computed is None:
        value, basis = None, "not computed by the service"
        missing.append(
            NOT_IN_LEDGER.get(
                criterion.indicator, f"indicator '{criterion.indicator}' is unknown to the service"
            )
        )
    else:
        value, basis = computed[0](figures), computed[1]
        if value is None:
            missing.append("no flows in the period to compute it from")
    if threshold is None:
        missing.append("no threshold: the park must set one")
    return Evaluation(
        criterion=criterion,
        value=value,
        threshold=threshold,
        threshold_set_by_park=by_park,
        verdict=judge(criterion, value, threshold),
        basis=basis,
        missing="; ".join(missing) or None,
    )


async def scorecard(
    session: AsyncSession,
    *,
    caller: Caller,
    park_id: int,
    period_start: date,
    period_end: date,
    thresholds: Mapping[str, float] | None = None,
    criteria_table: tuple[Criterion, ...] | None = None,
) -> Scorecard:
    """Judge every criterion for the park over the period.

    ``thresholds`` (criterion id → number) are the park's own, replacing the file's. Raises
    ``NotFoundError`` for an unknown park or criterion id and ``MfaError`` for a threshold
    that is not a finite number.
    """
    table = criteria() if criteria_table is None else criteria_table
    known = {c.id for c in table}
    given = dict(thresholds or {})
    for criterion_id, value in given.items():
        if criterion_id not in known:
            raise NotFoundError(
                f"no criterion {criterion_id!r} in eip_criteria.csv", field=("thresholds",)
            )
        if not math.isfinite(value):
            raise MfaError(
                f"threshold of {criterion_id!r} must be a finite number", field=("thresholds",)
            )
    if park_id not in await parks_by_id(session, [park_id], caller=caller):
        raise NotFoundError(f"no park with id {park_id}", field=("park",))
    scope = Scope(ScopeKind.PARK, park_id)
    figures = (
        await circularity(
            session, caller=caller, scope=scope, period_start=period_start, period_end=period_end
        ),
        await participation(
            session,
            caller=caller,
            park_id=park_id,
            period_start=period_start,
            period_end=period_end,
        ),
    )
    return Scorecard(
        park_id=park_id,
        period_start=period_start,
        period_end=period_end,
        evaluations=tuple(_evaluate(c, figures, given) for c in table),
        circularity=figures[0],
        participation=figures[1],
    )
