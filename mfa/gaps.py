"""Circularity gaps: one list an auditor can work through, for a park and a period.

Each ``Gap`` names its kind, the nodes and materials involved, the figures that make it a gap
and a sentence saying why. The kinds:

* ``UNBALANCED_BOOKS``: an enterprise's judged mass balance for a calendar month misses the
  tolerance: |inputs − outputs − ΔS| / max(inputs, outputs) > tolerance
  (``mfa.balance.park_balances``, the same figures as ``massBalance``).
* ``UNCONFIRMED_TRANSFER``: a transfer between two enterprises reported by one side only.
* ``MISMATCHED_TRANSFER``: both sides reported it and the newest confirmation differs by more
  than the tolerance in force when it was recorded: |q₁ − q₂| / max(q₁, q₂) > tolerance.
  Reversed transfers (and reversals) are settled and never gaps.
* ``DISPOSED_WHILE_NEIGHBOUR_BUYS_VIRGIN``: a waste stream sent to landfill or incineration
  while a neighbour buys virgin material the crosswalk says it can replace, in overlapping
  periods (``mfa.symbiosis.find_matches``); one gap per stream, listing every buyer.
* ``MISSING_FACTOR``: flows the life-cycle inventory cannot characterise
  (``lca.inventory.build_inventory``'s ``missing``): they would count as zero in a footprint.

Every kind is computed from GROUP BY statements in the database; no flow is loaded one by one
except the transfer gaps themselves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from lca.inventory import build_inventory
from mfa.access import Caller, flow_scope
from mfa.balance import park_balances
from mfa.models import ConfirmationStatus, Flow, FlowConfirmation, Material, NodeKind, ParkNode
from mfa.period import check_period
from mfa.symbiosis import check_park, find_matches

flow_t = Flow.__table__  # type: ignore[attr-defined]
confirmation_t = FlowConfirmation.__table__  # type: ignore[attr-defined]
node_t = ParkNode.__table__  # type: ignore[attr-defined]
material_t = Material.__table__  # type: ignore[attr-defined]


_NAMED_BUYERS = 3
"""Buyers named in a disposal gap's reason; every buyer is in its nodes and figures."""


class GapKind(StrEnum):
    UNBALANCED_BOOKS = "unbalanced_books"
    UNCONFIRMED_TRANSFER = "unconfirmed_transfer"
    MISMATCHED_TRANSFER = "mismatched_transfer"
    DISPOSED_WHILE_NEIGHBOUR_BUYS_VIRGIN = "disposed_while_neighbour_buys_virgin"
    MISSING_FACTOR = "missing_factor"


@dataclass(frozen=True, slots=True)
class Figure:
    """A named quantity of a gap, e.g. ("residual", 1234.5, "kg")."""

    name: str
    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class Gap:
    """One item of the list. ``quantity`` (in ``unit``) is the size an auditor sorts by:
    the residual, the transfer's quantity, the waste disposed, the quantity uncharacterised.
    ``nodes`` lists the enterprise(s) first, then any boundary node; ``flow_ids`` the ledger
    entries behind a transfer gap."""

    kind: GapKind
    period_start: date
    period_end: date
    nodes: tuple[int, ...]
    materials: tuple[int, ...]
    quantity: float
    unit: str
    reason: str
    figures: tuple[Figure, ...] = ()
    flow_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class GapList:
    park_id: int
    period_start: date
    period_end: date
    balance_tolerance: float
    kinds: tuple[GapKind, ...]
    gaps: tuple[Gap, ...]


async def _codes(session: AsyncSession, park_id: int) -> tuple[dict[int, str], dict[int, str]]:
    """Codes of the park's nodes and of the catalogue's materials, by id (for the reasons)."""
    nodes = await session.execute(
        sa.select(node_t.c.id, node_t.c.code).where(node_t.c.park_id == park_id)
    )
    materials = await session.execute(sa.select(material_t.c.id, material_t.c.code))
    return {r.id: r.code for r in nodes}, {r.id: r.code for r in materials}


async def _unbalanced(
    session: AsyncSession,
    *,
    caller: Caller,
    park_id: int,
    start: date,
    end: date,
    tolerance: float,
    codes: dict[int, str],
) -> list[Gap]:
    gaps = []
    for b in await park_balances(
        session,
        caller=caller,
        park_id=park_id,
        period_start=start,
        period_end=end,
        tolerance=tolerance,
    ):
        t = b.total
        if t.within_tolerance:
            continue
        worst = sorted(b.lines, key=lambda line: -abs(line.net))
        relative = (
            f"{t.relative_residual:.1%} of throughput {t.throughput:,.0f} kg"
            if t.relative_residual is not None
            else "with nothing flowing"
        )
        gaps.append(
            Gap(
                kind=GapKind.UNBALANCED_BOOKS,
                period_start=b.period_start,
                period_end=b.period_end,
                nodes=(b.enterprise_id,),
                materials=tuple(line.material_id for line in worst if line.net),
                quantity=t.residual,
                unit=t.unit,
                reason=(
                    f"{codes[b.enterprise_id]}'s books do not balance: inputs − outputs − stock "
                    f"change = {t.residual:,.1f} kg, {relative}, beyond the "
                    f"{tolerance:.0%} tolerance"
                    + ("" if t.stock_known else " (a stock change is unknown, counted as 0)")
                ),
                figures=(
                    Figure("inputs", t.inputs, t.unit),
                    Figure("outputs", t.outputs, t.unit),
                    Figure("stock_change", t.stock_change, t.unit),
                    Figure("residual", t.residual, t.unit),
                    Figure("throughput", t.throughput, t.unit),
                    *(
                        (Figure("relative_residual", t.relative_residual, "1"),)
                        if t.relative_residual is not None
                        else ()
                    ),
                ),
            )
        )
    return gaps


async def _transfers(
    session: AsyncSession,
    *,
    caller: Caller,
    park_id: int,
    start: date,
    end: date,
    nodes: dict[int, str],
    materials: dict[int, str],
) -> list[Gap]:
    """Transfers neither reversed nor confirmed within tolerance: three statements.

    Unconfirmed: an anti-join of the park's transfers with the confirmations. Mismatched:
    the mismatched confirmations that are the newest of their flow, and the transfers they
    confirm. Ends are kept to enterprises and reversed entries dropped with semi- and
    anti-joins on small sets, which both databases evaluate once instead of per row.
    """
    f = flow_t.alias("f")
    enterprises = sa.select(node_t.c.id).where(
        node_t.c.park_id == park_id, node_t.c.kind == NodeKind.ENTERPRISE.value
    )
    # Reversals and the entries they cancel, read through the unique index on reverses_id
    # (an `f.reverses_id IS NULL` test would lead SQLite to walk that index for every row).
    settled = sa.union_all(
        sa.select(flow_t.c.reverses_id).where(flow_t.c.reverses_id.is_not(None)),
        sa.select(flow_t.c.id).where(flow_t.c.reverses_id.is_not(None)),
    )
    transfer = (
        flow_scope(caller, f.c.park_id),
        f.c.park_id == park_id,
        f.c.period_start >= start,
        f.c.period_end <= end,
        f.c.source_id.in_(enterprises),
        f.c.target_id.in_(enterprises),
        f.c.id.not_in(settled),
    )
    columns = (
        f.c.id,
        f.c.source_id,
        f.c.target_id,
        f.c.material_id,
        f.c.period_start,
        f.c.period_end,
        f.c.quantity,
        f.c.unit,
        f.c.reporting_party_id,
    )
    c = confirmation_t.alias("c")
    unconfirmed = await session.execute(
        sa.select(*columns).where(*transfer, ~sa.exists().where(c.c.flow_id == f.c.id))
    )
    newer = confirmation_t.alias("newer")
    newest = {
        r.flow_id: r
        for r in await session.execute(
            sa.select(c.c.flow_id, c.c.quantity, c.c.relative_difference, c.c.tolerance).where(
                c.c.status == ConfirmationStatus.MISMATCHED.value,
                ~sa.exists().where(newer.c.flow_id == c.c.flow_id, newer.c.id > c.c.id),
            )
        )
    }
    # The flows of the (few) mismatched confirmations, looked up by id: a join would let
    # SQLite probe every confirmation id for every flow of the park.
    disputed = sa.select(confirmation_t.c.flow_id).where(
        confirmation_t.c.status == ConfirmationStatus.MISMATCHED.value
    )
    mismatched = await session.execute(sa.select(*columns).where(*transfer, f.c.id.in_(disputed)))
    rows = sorted(
        [(r, None) for r in unconfirmed]
        + [(r, newest[r.id]) for r in mismatched if r.id in newest],
        key=lambda pair: pair[0].id,
    )
    gaps = []
    for r, other in rows:
        source, target, material = nodes[r.source_id], nodes[r.target_id], materials[r.material_id]
        what = f"{r.quantity:,.1f} {r.unit} of {material} from {source} to {target}"
        if other is None:
            reporter = nodes[r.reporting_party_id]
            silent = target if r.reporting_party_id == r.source_id else source
            kind = GapKind.UNCONFIRMED_TRANSFER
            reason = f"{what} was reported by {reporter} only: {silent} has not reported it"
            figures: tuple[Figure, ...] = (Figure("reported", r.quantity, r.unit),)
        else:
            kind = GapKind.MISMATCHED_TRANSFER
            reason = (
                f"{what}: the two sides disagree, {r.quantity:,.1f} against "
                f"{other.quantity:,.1f} {r.unit} ({other.relative_difference:.1%}, beyond the "
                f"{other.tolerance:.0%} tolerance)"
            )
            figures = (
                Figure("reported", r.quantity, r.unit),
                Figure("counterparty_reported", other.quantity, r.unit),
                Figure("relative_difference", other.relative_difference, "1"),
            )
        gaps.append(
            Gap(
                kind=kind,
                period_start=r.period_start,
                period_end=r.period_end,
                nodes=(r.source_id, r.target_id),
                materials=(r.material_id,),
                quantity=r.quantity,
                unit=r.unit,
                reason=reason,
                figures=figures,
                flow_ids=(r.id,),
            )
        )
    return gaps


async def _disposed(
    session: AsyncSession,
    *,
    caller: Caller,
    park_id: int,
    start: date,
    end: date,
    nodes: dict[int, str],
    materials: dict[int, str],
) -> list[Gap]:
    matches = await find_matches(
        session, caller=caller, park_id=park_id, period_start=start, period_end=end
    )
    streams = defaultdict(list)
    for m in matches:
        streams[(m.producer_id, m.waste_material_id, m.disposal_node_id)].append(m)
    gaps = []
    for (producer, waste, disposal), found in streams.items():
        disposed = max(m.disposed for m in found)
        buyers = list(dict.fromkeys(m.buyer_id for m in found))
        virgins = list(dict.fromkeys(m.virgin_material_id for m in found))
        largest = sorted(found, key=lambda m: -m.bought)
        bought = ", ".join(
            f"{nodes[m.buyer_id]} buys {m.bought:,.0f} kg of virgin "
            f"{materials[m.virgin_material_id]} (HS {m.substitute.hs_heading})"
            for m in largest[:_NAMED_BUYERS]
        )
        if len(largest) > _NAMED_BUYERS:
            bought += f", and {len(largest) - _NAMED_BUYERS} more buyers (see figures)"
        gaps.append(
            Gap(
                kind=GapKind.DISPOSED_WHILE_NEIGHBOUR_BUYS_VIRGIN,
                period_start=start,
                period_end=end,
                nodes=(producer, *buyers, disposal),
                materials=(waste, *virgins),
                quantity=found[0].disposed_total,
                unit="kg",
                reason=(
                    f"{nodes[producer]} sends {found[0].disposed_total:,.0f} kg of "
                    f"{materials[waste]} (EWC {found[0].substitute.ewc_code}) to "
                    f"{found[0].disposal_kind.value} ({nodes[disposal]}) while, in overlapping "
                    f"periods, {bought}"
                ),
                figures=(
                    Figure("disposed", found[0].disposed_total, "kg"),
                    Figure("disposed_while_bought", disposed, "kg"),
                    *(Figure(f"bought:{nodes[m.buyer_id]}", m.bought, "kg") for m in found),
                ),
            )
        )
    return gaps


async def _missing_factors(
    session: AsyncSession,
    *,
    caller: Caller,
    park_id: int,
    start: date,
    end: date,
    nodes: dict[int, str],
    materials: dict[int, str],
) -> list[Gap]:
    inventory = await build_inventory(
        session, caller=caller, park_id=park_id, period_start=start, period_end=end
    )
    node_ids = {code: pk for pk, code in nodes.items()}
    material_ids = {code: pk for pk, code in materials.items()}
    return [
        Gap(
            kind=GapKind.MISSING_FACTOR,
            period_start=start,
            period_end=end,
            nodes=tuple(node_ids[code] for code in m.enterprises),
            materials=(material_ids[m.material_code],),
            quantity=m.quantity,
            unit=m.unit,
            reason=(
                f"{m.quantity:,.1f} {m.unit} of {m.material_code} in the books of "
                f"{', '.join(m.enterprises)} has {m.reason}: it counts as zero in every "
                "footprint until a sourced factor is added to datasets/factors"
            ),
            figures=(Figure("uncharacterised", m.quantity, m.unit),),
        )
        for m in inventory.missing
    ]


async def circularity_gaps(
    session: AsyncSession,
    *,
    caller: Caller,
    park_id: int,
    period_start: date,
    period_end: date,
    balance_tolerance: float,
    kinds: Collection[GapKind] | None = None,
) -> GapList:
    """The park's gaps of ``kinds`` (all when None) for [period_start, period_end].

    Ordered by kind (the order of ``GapKind``), then by |quantity|, largest first. Raises
    ``PeriodError`` for a period ending before it starts, ``NotFoundError`` for an unknown park.
    """
    check_period(period_start, period_end)
    await check_park(session, caller=caller, park_id=park_id)
    wanted = tuple(k for k in GapKind if kinds is None or k in kinds)
    nodes, materials = await _codes(session, park_id)
    gaps: list[Gap] = []
    if GapKind.UNBALANCED_BOOKS in wanted:
        gaps += await _unbalanced(
            session,
            caller=caller,
            park_id=park_id,
            start=period_start,
            end=period_end,
            tolerance=balance_tolerance,
            codes=nodes,
        )
    for kinds_of, finder in (
        ((GapKind.UNCONFIRMED_TRANSFER, GapKind.MISMATCHED_TRANSFER), _transfers),
        ((GapKind.DISPOSED_WHILE_NEIGHBOUR_BUYS_VIRGIN,), _disposed),
        ((GapKind.MISSING_FACTOR,), _missing_factors),
    ):
        if set(kinds_of) & set(wanted):
            found = await finder(
                session,
                caller=caller,
                park_id=park_id,
                start=period_start,
                end=period_end,
                nodes=nodes,
                materials=materials,
            )
            gaps += [g for g in found if g.kind in wanted]
    order = {kind: index for index, kind in enumerate(GapKind)}
    gaps.sort(key=lambda g: (order[g.kind], -abs(g.quantity), g.period_start, g.nodes))
    return GapList(
        park_id=park_id,
        period_start=period_start,
        period_end=period_end,
        balance_tolerance=balance_tolerance,
        kinds=wanted,
        gaps=tuple(gaps),
    )
