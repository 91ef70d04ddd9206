"""Industrial-symbiosis matches: a waste leaving the park for disposal that a neighbour could use.

A **match** pairs a waste stream (an enterprise's waste of EWC code w sent to a landfill or an
incinerator) with a **virgin purchase** (another enterprise buying, from a supplier outside the
park, a material of HS heading h that is neither reused nor recycled) when the crosswalk
``datasets/crosswalk/waste_substitutes.csv`` lists (w, h), and the two overlap in time: a
disposal flow and a purchase flow whose periods share at least one day. For a match over the
period [t₀, t₁] (inclusive dates, D = t₁ − t₀ + 1 days)::

    disposed  = Σ disposal flows of the stream whose period meets a purchase flow's period
    bought    = Σ purchase flows of the buyer whose period meets a disposal flow's period
    movable   = min(disposed, bought)                                   (kg in the period)
    per year  = movable · 365 / D

The SQL sums the ledger per (node, material, period) in two statements; only those groups
reach Python. ``symbiosis_opportunities`` adds, per match, the virgin input and disposal
avoided, the CO2e avoided and the cost saved (see its docstring and ``ASSUMPTIONS``).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from lca import factors
from mfa.access import Action, Caller, authorize, flow_scope
from mfa.errors import NotFoundError
from mfa.models import Flow, Material, MaterialKind, NodeKind, ParkNode
from mfa.period import check_period
from mfa.reads import parks_by_id
from mfa.settings import get_settings

flow_t = Flow.__table__  # type: ignore[attr-defined]
node_t = ParkNode.__table__  # type: ignore[attr-defined]
material_t = Material.__table__  # type: ignore[attr-defined]

DISPOSAL_NODES: Final = frozenset({NodeKind.LANDFILL, NodeKind.INCINERATION})
"""Routes that end a material's use: a waste sent there while a neighbour buys virgin is a gap."""

DAYS_PER_YEAR: Final = 365

ASSUMPTIONS: Final = (
    "One kg of waste replaces one kg of virgin material (no yield loss, grade assumed "
    "adequate): figures are upper bounds until the buyer confirms the grade.",
    "Only quantities in periods where disposal and purchase overlap count; figures per year "
    "scale the period's quantity by 365 / days in the period.",
    "Opportunities sharing a waste stream or a buyer's purchase are alternatives: their "
    "figures are not additive.",
    "Transport between the neighbours, any price paid for the waste and any pre-treatment "
    "cost are not counted.",
    "CO2e avoided = movable × (virgin cradle-to-gate factor + disposal factor of the waste − "
    "reprocessing factor of the waste), from datasets/factors; it is reported beside a "
    "footprint, never netted into it, and left empty, naming the missing factor, when one "
    "is missing.",
    "Cost saved = movable × (recorded purchase price of the virgin material + recorded "
    "disposal fee), each price = Σ invoiced value / Σ quantity of that enterprise's valued "
    "flows in the period; a price not recorded is not counted and is named.",
)
"""The assumptions behind every opportunity figure, returned with the opportunities."""


@dataclass(frozen=True, slots=True)
class Substitute:
    """One crosswalk row: waste of ``ewc_code`` can replace material of ``hs_heading``."""

    ewc_code: str
    hs_heading: str
    waste: str
    substitutes: str
    note: str


@dataclass(frozen=True, slots=True)
class Price:
    """Σ value / Σ quantity of the valued flows of a group, in one currency, per kg."""

    per_unit: float
    currency: str
    valued_quantity: float


@dataclass(frozen=True, slots=True)
class Match:
    """A waste stream sent to disposal and a neighbour's virgin purchase it could replace.

    Quantities are kg over the period (see the module docstring for the formulas).
    """

    producer_id: int
    waste_material_id: int
    disposal_node_id: int
    disposal_kind: NodeKind
    buyer_id: int
    virgin_material_id: int
    substitute: Substitute
    disposed_total: float
    bought_total: float
    disposed: float
    bought: float
    purchase_price: Price | None
    disposal_fee: Price | None
    notes: tuple[str, ...]

    @property
    def movable(self) -> float:
        return min(self.disposed, self.bought)


def crosswalk_path() -> Path:
    return get_settings().datasets_dir / "crosswalk" / "waste_substitutes.csv"


def substitutes() -> Mapping[str, tuple[Substitute, ...]]:
    """The crosswalk by EWC code (``'15 01 02'``), read once per file."""
    return _crosswalk(crosswalk_path())


@cache
def _crosswalk(path: Path) -> Mapping[str, tuple[Substitute, ...]]:
    by_code: dict[str, list[Substitute]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_code[row["ewc_code"]].append(
                Substitute(
                    row["ewc_code"],
                    row["hs_heading"],
                    row["waste"],
                    row["substitutes"],
                    row["note"],
                )
            )
    return MappingProxyType({code: tuple(rows) for code, rows in by_code.items()})


def _overlaps(a: tuple[date, date], b: tuple[date, date]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def price_of(rows: Iterable[Any]) -> tuple[Price | None, str | None]:
    """The price of a group from its (value, valued quantity, currencies) sums, or a note."""
    value = valued = 0.0
    currencies: set[str] = set()
    for r in rows:
        if r.valued_quantity:
            value += float(r.value)
            valued += float(r.valued_quantity)
            currencies |= {c for c in (r.currency, r.other_currency) if c}
    if valued <= 0:
        return None, None
    if len(currencies) != 1:
        return None, f"values in several currencies ({', '.join(sorted(currencies))})"
    return Price(value / valued, currencies.pop(), valued), None


async def _groups(
    session: AsyncSession,
    *,
    caller: Caller,
    park_id: int,
    start: date,
    end: date,
    enterprise_end: sa.ColumnElement[int],
    other_end: sa.ColumnElement[int],
    other_kinds: Iterable[NodeKind],
    material_ids: list[int],
) -> list[Any]:
    """Sums per (enterprise end, other end, material, period) of flows between an enterprise
    and a node of ``other_kinds``: one GROUP BY statement."""
    ent, other = node_t.alias("ent"), node_t.alias("other")
    f = flow_t
    valued = sa.case((f.c.value.is_not(None), f.c.quantity), else_=0.0)
    return list(
        await session.execute(
            sa.select(
                enterprise_end.label("enterprise_id"),
                other_end.label("other_id"),
                other.c.kind.label("other_kind"),
                f.c.material_id,
                f.c.period_start,
                f.c.period_end,
                sa.func.sum(f.c.quantity).label("quantity"),
                sa.func.coalesce(sa.func.sum(f.c.value), 0.0).label("value"),
                sa.func.sum(valued).label("valued_quantity"),
                sa.func.min(f.c.currency).label("currency"),
                sa.func.max(f.c.currency).label("other_currency"),
            )
            .select_from(
                f.join(ent, ent.c.id == enterprise_end).join(other, other.c.id == other_end)
            )
            .where(
                flow_scope(caller, f.c.park_id),
                f.c.park_id == park_id,
                ent.c.kind == NodeKind.ENTERPRISE.value,
                other.c.kind.in_([k.value for k in other_kinds]),
                f.c.material_id.in_(material_ids),
                f.c.period_start >= start,
                f.c.period_end <= end,
            )
            .group_by(
                enterprise_end,
                other_end,
                other.c.kind,
                f.c.material_id,
                f.c.period_start,
                f.c.period_end,
            )
        )
    )


class _Group:
    """The per-period sums of one waste stream or one buyer's purchases of one material.

    ``overlapping(periods)`` = Σ quantity of its periods that share a day with one of
    ``periods``, remembered per set of periods: with monthly books most groups share the
    same twelve periods, so a park with many producers and buyers computes each sum once.
    """

    def __init__(self) -> None:
        self.rows: list[Any] = []
        self._periods: dict[tuple[date, date], float] = defaultdict(float)
        self._seen: dict[frozenset[tuple[date, date]], float] = {}
        self._price: tuple[Price | None, str | None] | None = None
        self._frozen: frozenset[tuple[date, date]] | None = None

    def add(self, row: Any) -> None:
        self.rows.append(row)
        self._periods[(row.period_start, row.period_end)] += float(row.quantity)

    @property
    def total(self) -> float:
        return sum(self._periods.values())

    @property
    def periods(self) -> frozenset[tuple[date, date]]:
        """Its periods; read once every row is added (the set is kept)."""
        if self._frozen is None:
            self._frozen = frozenset(self._periods)
        return self._frozen

    @property
    def price(self) -> tuple[Price | None, str | None]:
        if self._price is None:
            self._price = price_of(self.rows)
        return self._price

    def overlapping(self, periods: frozenset[tuple[date, date]]) -> float:
        if periods not in self._seen:
            self._seen[periods] = sum(
                quantity
                for mine, quantity in self._periods.items()
                if mine in periods or any(_overlaps(mine, other) for other in periods)
            )
        return self._seen[periods]


async def check_park(session: AsyncSession, *, caller: Caller, park_id: int) -> None:
    """Refuse a caller who may not read the whole park, and a park it cannot see."""
    authorize(caller, Action.READ, park_id=park_id)
    if park_id not in await parks_by_id(session, [park_id], caller=caller):
        raise NotFoundError(f"no park with id {park_id}", field=("park",))


async def find_matches(
    session: AsyncSession, *, caller: Caller, park_id: int, period_start: date, period_end: date
) -> list[Match]:
    """Every (waste stream to disposal, neighbour's virgin purchase) pair the crosswalk links
    and time overlaps, in the order producer, waste, disposal node, buyer, virgin material."""
    check_period(period_start, period_end)
    await check_park(session, caller=caller, park_id=park_id)
    crosswalk = substitutes()
    m = material_t
    catalogue = list(
        await session.execute(
            sa.select(m.c.id, m.c.code, m.c.kind, m.c.hs_code, m.c.ewc_code, m.c.secondary)
        )
    )
    wastes = {
        r.id: r.ewc_code
        for r in catalogue
        if r.ewc_code in crosswalk and r.kind in (MaterialKind.WASTE, MaterialKind.BY_PRODUCT)
    }
    headings = {s.hs_heading for rows in crosswalk.values() for s in rows}
    virgin = {
        r.id: r.hs_code[:4]
        for r in catalogue
        if r.hs_code
        and r.hs_code[:4] in headings
        and not r.secondary
        and r.kind in (MaterialKind.PRODUCT, MaterialKind.BY_PRODUCT)
    }
    if not wastes or not virgin:
        return []
    f = flow_t
    disposals = await _groups(
        session,
        caller=caller,
        park_id=park_id,
        start=period_start,
        end=period_end,
        enterprise_end=f.c.source_id,
        other_end=f.c.target_id,
        other_kinds=DISPOSAL_NODES,
        material_ids=sorted(wastes),
    )
    purchases = await _groups(
        session,
        caller=caller,
        park_id=park_id,
        start=period_start,
        end=period_end,
        enterprise_end=f.c.target_id,
        other_end=f.c.source_id,
        other_kinds=(NodeKind.SUPPLIER,),
        material_ids=sorted(virgin),
    )
    streams: dict[tuple[int, int, int, str], _Group] = {}
    for r in disposals:
        key = (r.enterprise_id, r.material_id, r.other_id, r.other_kind)
        streams.setdefault(key, _Group()).add(r)
    buys: dict[str, dict[tuple[int, int], _Group]] = defaultdict(dict)
    for r in purchases:
        buys[virgin[r.material_id]].setdefault((r.enterprise_id, r.material_id), _Group()).add(r)

    matches: list[Match] = []
    for (producer, waste, disposal, kind), stream in sorted(streams.items()):
        if stream.total <= 0:
            continue
        fee, fee_note = price_of(stream.rows)
        for sub in crosswalk[wastes[waste]]:
            for (buyer, material), purchase in sorted(buys[sub.hs_heading].items()):
                if buyer == producer:
                    continue
                disposed = stream.overlapping(purchase.periods)
                bought = purchase.overlapping(stream.periods)
                if disposed <= 0 or bought <= 0:
                    continue
                price, price_note = purchase.price
                notes = [
                    f"{label}: {note}"
                    for label, note in (("purchase price", price_note), ("disposal fee", fee_note))
                    if note
                ]
                matches.append(
                    Match(
                        producer_id=producer,
                        waste_material_id=waste,
                        disposal_node_id=disposal,
                        disposal_kind=NodeKind(kind),
                        buyer_id=buyer,
                        virgin_material_id=material,
                        substitute=sub,
                        disposed_total=stream.total,
                        bought_total=purchase.total,
                        disposed=disposed,
                        bought=bought,
                        purchase_price=price,
                        disposal_fee=fee,
                        notes=tuple(notes),
                    )
                )
    return matches


@dataclass(frozen=True, slots=True)
class Money:
    amount: float
    currency: str


@dataclass(frozen=True, slots=True)
class Opportunity:
    """A match with its yearly figures (kg, kg CO2e, money per year); see ``ASSUMPTIONS``.

    ``co2e_avoided_per_year`` = movable/yr × (``virgin_factor`` + ``disposal_factor`` −
    ``reprocessing_factor``), kg CO2e per kg each; ``None`` when any is missing, and
    ``missing_factors`` says which. ``cost_saved_per_year`` holds one amount per currency.
    """

    rank: int
    match: Match
    movable_per_year: float
    virgin_avoided_per_year: float
    disposal_avoided_per_year: float
    virgin_factor: float | None
    disposal_factor: float | None
    reprocessing_factor: float | None
    co2e_avoided_per_year: float | None
    missing_factors: tuple[str, ...]
    cost_saved_per_year: tuple[Money, ...]
    cost_not_counted: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Opportunities:
    park_id: int
    period_start: date
    period_end: date
    days: int
    items: tuple[Opportunity, ...]
    assumptions: tuple[str, ...] = ASSUMPTIONS


def _co2e(
    waste_code: str, virgin_code: str
) -> tuple[float | None, float | None, float | None, tuple[str, ...]]:
    """(virgin, disposal, reprocessing) factors in kg CO2e/kg, and what is missing."""
    missing: list[str] = []
    purchased = factors.purchased_factor(virgin_code)
    if purchased is None:
        missing.append(f"{virgin_code}: no cradle-to-gate factor (purchased_materials.csv)")
    recycling = factors.recycling_emissions(waste_code)
    if recycling is None:
        missing.append(
            f"{waste_code}: no disposal or reprocessing factor (recycling_emissions.csv)"
        )
    return (
        purchased.kg_co2e_per_unit if purchased else None,
        recycling.e_disposal if recycling else None,
        recycling.e_recycled if recycling else None,
        tuple(missing),
    )


async def symbiosis_opportunities(
    session: AsyncSession, *, caller: Caller, park_id: int, period_start: date, period_end: date
) -> Opportunities:
    """Every match with its yearly figures, ranked by tonnage that could move per year
    (largest first; ties by CO2e avoided, known before unknown).

    Per match, with k = 365 / D (D days in the period) and q = movable (kg in the period):
    movable, virgin input avoided and disposal avoided per year = q·k (one kg replaces one);
    CO2e avoided per year = q·k·(E_v + E_D − E_rec), with E_v the virgin material's
    cradle-to-gate factor (``lca.factors.purchased_factor``), E_D and E_rec the waste's
    disposal and reprocessing factors (``lca.factors.recycling_emissions``: ``e_disposal``,
    ``e_recycled``); cost saved per year = q·k·(purchase price + disposal fee) per currency.
    """
    matches = await find_matches(
        session, caller=caller, park_id=park_id, period_start=period_start, period_end=period_end
    )
    days = (period_end - period_start).days + 1
    scale = DAYS_PER_YEAR / days
    codes = {
        r.id: r.code
        for r in await session.execute(
            sa.select(material_t.c.id, material_t.c.code).where(
                material_t.c.id.in_(
                    {x.waste_material_id for x in matches} | {x.virgin_material_id for x in matches}
                )
            )
        )
    }
    unranked: list[Opportunity] = []
    for match in matches:
        per_year = match.movable * scale
        e_v, e_d, e_rec, missing = _co2e(
            codes[match.waste_material_id], codes[match.virgin_material_id]
        )
        co2e = (
            per_year * (e_v + e_d - e_rec)
            if e_v is not None and e_d is not None and e_rec is not None
            else None
        )
        saved: dict[str, float] = defaultdict(float)
        not_counted = list(match.notes)
        for label, price in (
            ("purchase price", match.purchase_price),
            ("disposal fee", match.disposal_fee),
        ):
            if price is None:
                not_counted.append(f"{label}: not recorded")
            else:
                saved[price.currency] += per_year * price.per_unit
        unranked.append(
            Opportunity(
                rank=0,
                match=match,
                movable_per_year=per_year,
                virgin_avoided_per_year=per_year,
                disposal_avoided_per_year=per_year,
                virgin_factor=e_v,
                disposal_factor=e_d,
                reprocessing_factor=e_rec,
                co2e_avoided_per_year=co2e,
                missing_factors=missing,
                cost_saved_per_year=tuple(Money(v, c) for c, v in sorted(saved.items())),
                cost_not_counted=tuple(not_counted),
            )
        )
    unranked.sort(
        key=lambda o: (
            -o.movable_per_year,
            o.co2e_avoided_per_year is None,
            -(o.co2e_avoided_per_year or 0.0),
        )
    )
    ranked = tuple(replace(o, rank=index) for index, o in enumerate(unranked, 1))
    return Opportunities(park_id, period_start, period_end, days, ranked)
