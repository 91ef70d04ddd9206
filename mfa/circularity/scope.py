"""Whose circularity: a park, one enterprise or a group, and the flows an indicator sums.

A scope is a set S of enterprises of one park. Relative to S a flow is an *inflow* (target
in S, source outside), an *outflow* (source in S, target outside) or *internal* (both in S):
the boundary the WBCSD CTI draws around a company, so a transfer between two members of a
group is neither bought nor sold by the group. Boundary nodes are never members.

Every indicator term is a sum over *flow classes*: the ledger's flows of the scope and period
grouped by material, which ends are members, the kinds of both ends and the receiving
enterprise's ISIC class. ``FlowSelection`` keeps the classes a term summed and turns them back
into SQL conditions, so the flows behind any figure can be listed page by page and summed by
an auditor to the same total.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mfa.access import Caller, flow_scope
from mfa.errors import MfaError, NotFoundError
from mfa.models import NodeKind, ParkNode
from mfa.period import check_period
from mfa.reads import flow_t, nodes_by_id, parks_by_id

node_t = ParkNode.__table__  # type: ignore[attr-defined]


class ScopeKind(StrEnum):
    PARK = "park"
    ENTERPRISE = "enterprise"
    ENTERPRISES = "enterprises"


@dataclass(frozen=True, slots=True)
class Scope:
    """The enterprises S an indicator is computed for.

    ``enterprise_ids`` is empty for a park (every enterprise of it, including ones registered
    later) and sorted otherwise; all members belong to ``park_id``.
    """

    kind: ScopeKind
    park_id: int
    enterprise_ids: tuple[int, ...] = ()

    def contains(self, node_id: Any) -> sa.ColumnElement[bool]:
        """SQL: the node id column names a member of S."""
        if self.kind is ScopeKind.PARK:
            return node_id.in_(  # type: ignore[no-any-return]
                sa.select(node_t.c.id).where(
                    node_t.c.park_id == self.park_id, node_t.c.kind == NodeKind.ENTERPRISE.value
                )
            )
        return node_id.in_(self.enterprise_ids)  # type: ignore[no-any-return]

    def same_park(self, park_id: Any) -> sa.ColumnElement[bool]:
        """SQL: a flow's park is S's. Said for a park only: a listed member's flows are all in
        its park, and the condition would lead SQLite (which runs without ANALYZE) to scan
        the park's flows by ``ix_flow_park_id_id`` instead of probing the members' ends."""
        if self.kind is ScopeKind.PARK:
            return park_id == self.park_id  # type: ignore[no-any-return]
        return sa.true()


async def resolve_scope(
    session: AsyncSession,
    *,
    caller: Caller,
    park_id: int | None = None,
    enterprise_ids: Sequence[int] = (),
) -> Scope:
    """The scope of a park, or of enterprises of one park; refuse what it cannot be.

    Raises ``NotFoundError`` naming the park or enterprise the caller cannot see (or a boundary
    node given as an enterprise), and ``MfaError`` when both or neither are given, the list is
    empty or the enterprises lie in different parks.
    """
    if (park_id is None) == (not enterprise_ids):
        raise MfaError("give either a park or one or more enterprises", field=("scope",))
    if park_id is not None:
        if park_id not in await parks_by_id(session, [park_id], caller=caller):
            raise NotFoundError(f"no park with id {park_id}", field=("scope", "park"))
        return Scope(ScopeKind.PARK, park_id)
    wanted = sorted(set(enterprise_ids))
    nodes = await nodes_by_id(session, wanted, caller=caller)
    for node_id in wanted:
        node = nodes.get(node_id)
        if node is None or node.kind is not NodeKind.ENTERPRISE:
            raise NotFoundError(
                f"no enterprise with id {node_id}: a scope is made of enterprises of a park",
                field=("scope", "enterprises"),
            )
    parks = {nodes[i].park_id for i in wanted}
    if len(parks) > 1:
        raise MfaError(
            "the enterprises of a scope must belong to one park", field=("scope", "enterprises")
        )
    kind = ScopeKind.ENTERPRISE if len(wanted) == 1 else ScopeKind.ENTERPRISES
    return Scope(kind, parks.pop(), tuple(wanted))


@dataclass(frozen=True, slots=True, order=True)
class FlowClass:
    """Flows alike for every indicator: one material, the same member ends and end kinds.

    ``target_isic`` is the receiving enterprise's ISIC class (None for a boundary node): it
    decides a waste's fate (a waste collector, a power plant).
    """

    material_id: int
    source_in: bool
    target_in: bool
    source_kind: NodeKind
    target_kind: NodeKind
    target_isic: str | None

    @property
    def inflow(self) -> bool:
        return self.target_in and not self.source_in

    @property
    def outflow(self) -> bool:
        return self.source_in and not self.target_in

    @property
    def internal(self) -> bool:
        return self.source_in and self.target_in


@dataclass(frozen=True, slots=True)
class ClassSum:
    """Σ quantity (canonical unit, reversals netted) and number of entries of a class."""

    flow_class: FlowClass
    quantity: float
    entries: int


@dataclass(frozen=True, slots=True)
class FlowSelection:
    """The ledger entries a figure was computed from: those of ``classes`` in the period.

    A flow belongs to the period when ``period_start ≥ start`` and ``period_end ≤ end``, the
    convention of ``mfa.balance`` and every ledger read. ``entries`` is their number,
    reversals included: a page through ``conditions`` has exactly that ``totalCount``.
    """

    scope: Scope
    period_start: date
    period_end: date
    classes: tuple[FlowClass, ...]
    entries: int

    def conditions(self, f: Any) -> list[sa.ColumnElement[bool]]:
        """SQL conditions on flow alias ``f`` selecting exactly these flows."""
        if not self.classes:
            return [sa.false()]
        by_ends: dict[tuple[bool, bool, NodeKind, NodeKind, str | None], list[int]] = defaultdict(
            list
        )
        for c in self.classes:
            key = (c.source_in, c.target_in, c.source_kind, c.target_kind, c.target_isic)
            by_ends[key].append(c.material_id)
        alternatives = []
        for (source_in, target_in, source_kind, target_kind, isic), materials in sorted(
            by_ends.items(), key=str
        ):
            source_member = self.scope.contains(f.c.source_id)
            target_member = self.scope.contains(f.c.target_id)
            alternatives.append(
                sa.and_(
                    f.c.material_id.in_(sorted(set(materials))),
                    source_member if source_in else ~source_member,
                    target_member if target_in else ~target_member,
                    f.c.source_id.in_(self._nodes(source_kind)),
                    f.c.target_id.in_(self._nodes(target_kind, isic, by_isic=True)),
                )
            )
        return [
            self.scope.same_park(f.c.park_id),
            f.c.period_start >= self.period_start,
            f.c.period_end <= self.period_end,
            sa.or_(*alternatives),
        ]

    def _nodes(
        self, kind: NodeKind, isic: str | None = None, *, by_isic: bool = False
    ) -> sa.Select[Any]:
        """Ids of the park's nodes of ``kind`` (of ISIC class ``isic`` too with ``by_isic``)."""
        query = sa.select(node_t.c.id).where(
            node_t.c.park_id == self.scope.park_id, node_t.c.kind == kind.value
        )
        if by_isic:
            query = query.where(
                node_t.c.isic_code.is_(None) if isic is None else node_t.c.isic_code == isic
            )
        return query


def select_flows(
    scope: Scope, period_start: date, period_end: date, sums: Iterable[ClassSum]
) -> FlowSelection:
    """The selection of the classes in ``sums``, counting their entries."""
    chosen = sorted(sums, key=lambda s: s.flow_class)
    return FlowSelection(
        scope=scope,
        period_start=period_start,
        period_end=period_end,
        classes=tuple(s.flow_class for s in chosen),
        entries=sum(s.entries for s in chosen),
    )


async def class_sums(
    session: AsyncSession, *, caller: Caller, scope: Scope, period_start: date, period_end: date
) -> list[ClassSum]:
    """Every flow touching S in the period, summed per ``FlowClass``: one statement.

    The database does the summing; Python receives one row per class (materials × end kinds
    × receiving ISIC classes), however many flows the ledger holds. A park is one scan of its
    flows; a list of enterprises is two grouped reads, of the flows they send and of those
    they receive from outside the list, so each can use the index on its end.
    """
    check_period(period_start, period_end)

    def grouped(part: str) -> sa.Select[Any]:
        """``touching`` S, ``sent`` by S, or ``received`` by S from outside it."""
        f = flow_t.alias("f")
        src = node_t.alias("src")
        tgt = node_t.alias("tgt")
        if scope.kind is ScopeKind.PARK:
            source_in: sa.ColumnElement[bool] = src.c.kind == NodeKind.ENTERPRISE.value
            target_in: sa.ColumnElement[bool] = tgt.c.kind == NodeKind.ENTERPRISE.value
        else:
            source_in = f.c.source_id.in_(scope.enterprise_ids)
            target_in = f.c.target_id.in_(scope.enterprise_ids)
        source_flag = sa.case((source_in, 1), else_=0).label("source_in")
        target_flag = sa.case((target_in, 1), else_=0).label("target_in")
        keys = (f.c.material_id, source_flag, target_flag, src.c.kind, tgt.c.kind, tgt.c.isic_code)
        chosen = {
            "touching": sa.or_(source_in, target_in),
            "sent": source_in,
            "received": sa.and_(~source_in, target_in),
        }[part]
        return (
            sa.select(
                *keys,
                sa.func.sum(f.c.quantity).label("quantity"),
                sa.func.count().label("entries"),
            )
            .select_from(
                f.join(src, src.c.id == f.c.source_id).join(tgt, tgt.c.id == f.c.target_id)
            )
            .where(
                flow_scope(caller, f.c.park_id, parties=(f.c.source_id, f.c.target_id)),
                scope.same_park(f.c.park_id),
                f.c.period_start >= period_start,
                f.c.period_end <= period_end,
                chosen,
            )
            .group_by(*keys)
        )

    statement: sa.Select[Any] | sa.CompoundSelect[Any]
    if scope.kind is ScopeKind.PARK:
        statement = grouped("touching")
    else:
        statement = sa.union_all(grouped("sent"), grouped("received"))
    rows = await session.execute(statement)
    return [
        ClassSum(
            flow_class=FlowClass(
                material_id=r[0],
                source_in=bool(r[1]),
                target_in=bool(r[2]),
                source_kind=NodeKind(r[3]),
                target_kind=NodeKind(r[4]),
                target_isic=r[5],
            ),
            quantity=float(r[6]),
            entries=int(r[7]),
        )
        for r in rows
    ]
