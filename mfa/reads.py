"""Reading the ledger and the catalogue, page by page, within the caller's scope.

Shaped for the API's read path: a page of flows comes back with its ends, material and
confirmation in one statement, plus one count with the same filter, so nested fields are
plain attribute reads and the number of statements does not grow with the page size.
Pages are keyset pages ordered by id: ``after_id`` is the last id of the previous page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import cache, lru_cache
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mfa.access import Caller, flow_scope, park_scope
from mfa.models import (
    BatchKind,
    ConfirmationStatus,
    Flow,
    FlowConfirmation,
    Material,
    MaterialKind,
    NodeKind,
    Park,
    ParkNode,
    RecordBatch,
)
from mfa.units import Dimension

T = TypeVar("T")

flow_t = Flow.__table__  # type: ignore[attr-defined]
confirmation_t = FlowConfirmation.__table__  # type: ignore[attr-defined]
node_t = ParkNode.__table__  # type: ignore[attr-defined]
material_t = Material.__table__  # type: ignore[attr-defined]
park_t = Park.__table__  # type: ignore[attr-defined]
batch_t = RecordBatch.__table__  # type: ignore[attr-defined]


class Direction(StrEnum):
    """Flows relative to an enterprise: into it, out of it, or either."""

    IN = "in"
    OUT = "out"
    ANY = "any"


class TransferStatus(StrEnum):
    """Where a flow stands between its two parties.

    ``NOT_A_TRANSFER``: one end is a boundary node, only the enterprise reports it.
    ``UNCONFIRMED``: a transfer between enterprises reported by one side only.
    ``CONFIRMED`` / ``MISMATCHED``: the other side reported it too, within / beyond tolerance.
    ``REVERSED``: the flow was cancelled by a reversing entry (or is that entry).
    """

    NOT_A_TRANSFER = "not_a_transfer"
    UNCONFIRMED = "unconfirmed"
    CONFIRMED = "confirmed"
    MISMATCHED = "mismatched"
    REVERSED = "reversed"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total_count: int
    has_next: bool
    has_previous: bool


@dataclass(frozen=True, slots=True)
class ParkRow:
    id: int
    code: str
    name: str
    country: str
    region: str | None
    description: str | None


@dataclass(frozen=True, slots=True)
class NodeRow:
    id: int
    park_id: int
    code: str
    name: str
    kind: NodeKind
    isic_code: str | None
    tax_id: str | None


@dataclass(frozen=True, slots=True)
class MaterialRow:
    id: int
    code: str
    name: str
    kind: MaterialKind
    dimension: Dimension
    hs_code: str | None
    ewc_code: str | None
    vn_waste_code: str | None
    hazardous: bool
    renewable: bool
    secondary: bool
    description: str | None
    brightway_database: str | None
    brightway_code: str | None


@dataclass(frozen=True, slots=True)
class ConfirmationRow:
    id: int
    flow_id: int
    reporting_party_id: int
    quantity: float
    reported_quantity: str
    reported_unit: str
    evidence: str | None
    status: ConfirmationStatus
    relative_difference: float
    tolerance: float
    recorded_by: str
    recorded_at: datetime


def transfer_status(
    *,
    reverses_id: int | None,
    reversed_by_id: int | None,
    source_kind: NodeKind,
    target_kind: NodeKind,
    confirmation_status: ConfirmationStatus | None,
) -> TransferStatus:
    """Where a flow stands between its parties (``TransferStatus``), from its reversal links,
    its ends' kinds and the status of its newest confirmation, if any."""
    if reverses_id is not None or reversed_by_id is not None:
        return TransferStatus.REVERSED
    if NodeKind.ENTERPRISE is not source_kind or NodeKind.ENTERPRISE is not target_kind:
        return TransferStatus.NOT_A_TRANSFER
    if confirmation_status is None:
        return TransferStatus.UNCONFIRMED
    return TransferStatus(confirmation_status.value)


@dataclass(frozen=True, slots=True)
class FlowRow:
    id: int
    park_id: int
    source: NodeRow
    target: NodeRow
    material: MaterialRow
    quantity: float
    unit: str
    reported_quantity: str
    reported_unit: str
    period_start: date
    period_end: date
    reporting_party_id: int
    evidence: str | None
    relative_uncertainty: float | None
    reverses_id: int | None
    reversed_by_id: int | None
    reason: str | None
    batch_id: int | None
    recorded_by: str
    recorded_at: datetime
    value: float | None
    currency: str | None
    confirmation: ConfirmationRow | None

    @property
    def transfer_status(self) -> TransferStatus:
        return transfer_status(
            reverses_id=self.reverses_id,
            reversed_by_id=self.reversed_by_id,
            source_kind=self.source.kind,
            target_kind=self.target.kind,
            confirmation_status=None if self.confirmation is None else self.confirmation.status,
        )

    @property
    def reporting_party(self) -> NodeRow:
        return self.source if self.reporting_party_id == self.source.id else self.target


@dataclass(frozen=True, slots=True)
class FlowFilter:
    """Which flows a page holds. Periods select flows whose period lies inside [start, end]."""

    park_id: int | None = None
    enterprise_id: int | None = None
    direction: Direction = Direction.ANY
    material_ids: tuple[int, ...] = ()
    kinds: tuple[MaterialKind, ...] = ()
    period_start: date | None = None
    period_end: date | None = None
    include_reversed: bool = True
    batch_id: int | None = None


_NODE_FIELDS = ("id", "park_id", "code", "name", "kind", "isic_code", "tax_id")
_MATERIAL_FIELDS = (
    "id",
    "code",
    "name",
    "kind",
    "dimension",
    "hs_code",
    "ewc_code",
    "vn_waste_code",
    "hazardous",
    "renewable",
    "secondary",
    "description",
    "brightway_database",
    "brightway_code",
)
_CONFIRMATION_FIELDS = (
    "id",
    "flow_id",
    "reporting_party_id",
    "quantity",
    "reported_quantity",
    "reported_unit",
    "evidence",
    "status",
    "relative_difference",
    "tolerance",
    "recorded_by",
    "recorded_at",
)
_FLOW_FIELDS = (
    "id",
    "park_id",
    "quantity",
    "unit",
    "reported_quantity",
    "reported_unit",
    "period_start",
    "period_end",
    "reporting_party_id",
    "evidence",
    "relative_uncertainty",
    "reverses_id",
    "reason",
    "batch_id",
    "recorded_by",
    "recorded_at",
    "value",
    "currency",
)


def node_row(m: Any, prefix: str = "") -> NodeRow:
    return NodeRow(
        id=m[f"{prefix}id"],
        park_id=m[f"{prefix}park_id"],
        code=m[f"{prefix}code"],
        name=m[f"{prefix}name"],
        kind=NodeKind(m[f"{prefix}kind"]),
        isic_code=m[f"{prefix}isic_code"],
        tax_id=m[f"{prefix}tax_id"],
    )


def material_row(m: Any, prefix: str = "") -> MaterialRow:
    values = {name: m[f"{prefix}{name}"] for name in _MATERIAL_FIELDS}
    values["kind"] = MaterialKind(values["kind"])
    values["dimension"] = Dimension(values["dimension"])
    return MaterialRow(**values)


def _confirmation_row(m: Any, prefix: str = "") -> ConfirmationRow | None:
    if m[f"{prefix}id"] is None:
        return None
    values = {name: m[f"{prefix}{name}"] for name in _CONFIRMATION_FIELDS}
    values["status"] = ConfirmationStatus(values["status"])
    return ConfirmationRow(**values)


@cache
def _flow_join() -> tuple[Any, Any, dict[str, sa.ColumnElement[Any]]]:
    """Flows with both ends, material, newest confirmation and reversal, one row each: the
    FROM clause, the flow alias ``f`` and the labelled columns (``FLOW_COLUMNS``).

    Built once: statements are immutable, and building its six aliases and 50 columns took
    about 5 ms of every page (docs/performance.md)."""
    f = flow_t.alias("f")
    src = node_t.alias("src")
    tgt = node_t.alias("tgt")
    mat = material_t.alias("mat")
    conf = confirmation_t.alias("conf")
    rev = flow_t.alias("rev")
    newest = (
        sa.select(sa.func.max(confirmation_t.c.id))
        .where(confirmation_t.c.flow_id == f.c.id)
        .scalar_subquery()
    )
    columns: list[sa.ColumnElement[Any]] = [f.c[name] for name in _FLOW_FIELDS]
    columns += [src.c[name].label(f"src_{name}") for name in _NODE_FIELDS]
    columns += [tgt.c[name].label(f"tgt_{name}") for name in _NODE_FIELDS]
    columns += [mat.c[name].label(f"mat_{name}") for name in _MATERIAL_FIELDS]
    columns += [conf.c[name].label(f"conf_{name}") for name in _CONFIRMATION_FIELDS]
    columns.append(rev.c.id.label("reversed_by_id"))
    joined = (
        f.join(src, src.c.id == f.c.source_id)
        .join(tgt, tgt.c.id == f.c.target_id)
        .join(mat, mat.c.id == f.c.material_id)
        .outerjoin(conf, conf.c.id == newest)
        .outerjoin(rev, rev.c.reverses_id == f.c.id)
    )
    return joined, f, {str(column.key): column for column in columns}


FLOW_COLUMNS = (
    *_FLOW_FIELDS,
    *(f"src_{name}" for name in _NODE_FIELDS),
    *(f"tgt_{name}" for name in _NODE_FIELDS),
    *(f"mat_{name}" for name in _MATERIAL_FIELDS),
    *(f"conf_{name}" for name in _CONFIRMATION_FIELDS),
    "reversed_by_id",
)
"""The labels of a flow page's columns: the flow's own, ``src_``/``tgt_`` its ends',
``mat_`` its material's, ``conf_`` its newest confirmation's (all None without one), and
``reversed_by_id``."""


@lru_cache(maxsize=256)
def _flow_select(columns: tuple[str, ...] = FLOW_COLUMNS) -> tuple[sa.Select[Any], Any]:
    """SELECT of these labelled columns of flows (``FLOW_COLUMNS``) and the flow alias ``f``:
    built once per column set (a compiled document's, ``mfa.api.compiled``; bounded, as
    clients choose their selections)."""
    joined, f, by_label = _flow_join()
    return sa.select(*(by_label[label] for label in columns)).select_from(joined), f


@cache
def _counted_flows() -> Any:
    """The flow alias a page's count reads: built once, since an alias copies the table's 21
    columns (about 1.5 ms of every page, docs/performance.md)."""
    return flow_t.alias("f")


def flow_row(m: Any) -> FlowRow:
    values = {name: m[name] for name in _FLOW_FIELDS}
    return FlowRow(
        **values,
        source=node_row(m, "src_"),
        target=node_row(m, "tgt_"),
        material=material_row(m, "mat_"),
        confirmation=_confirmation_row(m, "conf_"),
        reversed_by_id=m["reversed_by_id"],
    )


def _parties(f: Any) -> tuple[sa.ColumnElement[int], ...]:
    """A flow's parties for ``flow_scope``: an enterprise sees the flows it sends or receives."""
    return (f.c.source_id, f.c.target_id)


def _flow_conditions(f: Any, flt: FlowFilter) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if flt.park_id is not None:
        conditions.append(f.c.park_id == flt.park_id)
    if flt.enterprise_id is not None:
        if flt.direction is Direction.IN:
            conditions.append(f.c.target_id == flt.enterprise_id)
        elif flt.direction is Direction.OUT:
            conditions.append(f.c.source_id == flt.enterprise_id)
        else:
            conditions.append(
                sa.or_(f.c.source_id == flt.enterprise_id, f.c.target_id == flt.enterprise_id)
            )
    if flt.batch_id is not None:
        conditions.append(f.c.batch_id == flt.batch_id)
    if flt.material_ids:
        conditions.append(f.c.material_id.in_(flt.material_ids))
    if flt.kinds:
        conditions.append(
            f.c.material_id.in_(
                sa.select(material_t.c.id).where(
                    material_t.c.kind.in_([k.value for k in flt.kinds])
                )
            )
        )
    if flt.period_start is not None:
        conditions.append(f.c.period_start >= flt.period_start)
    if flt.period_end is not None:
        conditions.append(f.c.period_end <= flt.period_end)
    if not flt.include_reversed:
        rev = flow_t.alias("rev_x")
        conditions.append(f.c.reverses_id.is_(None))
        conditions.append(~sa.exists().where(rev.c.reverses_id == f.c.id))
    return conditions


async def _flow_rows(
    session: AsyncSession,
    columns: tuple[str, ...],
    *,
    caller: Caller,
    flt: FlowFilter,
    first: int,
    after_id: int | None,
    where: Callable[[Any], Sequence[sa.ColumnElement[bool]]] | None,
) -> tuple[Sequence[sa.Row[Any]], int]:
    """Up to ``first + 1`` rows of these columns in recording order after ``after_id``, and
    the count of all that match: the one keyset query of ``flow_page`` and
    ``flow_page_columns``."""
    statement, f = _flow_select(columns)
    conditions = [flow_scope(caller, f.c.park_id, parties=_parties(f)), *_flow_conditions(f, flt)]
    if where is not None:
        conditions += where(f)
    page_conditions = list(conditions)
    if after_id is not None:
        page_conditions.append(f.c.id > after_id)
    rows = (
        await session.execute(statement.where(*page_conditions).order_by(f.c.id).limit(first + 1))
    ).all()
    counted = _counted_flows()
    total = (
        await session.execute(
            sa.select(sa.func.count())
            .select_from(counted)
            .where(
                flow_scope(caller, counted.c.park_id, parties=_parties(counted)),
                *_flow_conditions(counted, flt),
                *(where(counted) if where is not None else ()),
            )
        )
    ).scalar_one()
    return rows, int(total)


async def flow_page(
    session: AsyncSession,
    *,
    caller: Caller,
    flt: FlowFilter,
    first: int,
    after_id: int | None = None,
    where: Callable[[Any], Sequence[sa.ColumnElement[bool]]] | None = None,
) -> Page[FlowRow]:
    """One keyset page of flows (in recording order) and the count of all that match.

    ``where(f)`` adds conditions on the flow alias ``f`` beyond what ``flt`` can say (the
    flows behind a circularity indicator)."""
    rows, total = await _flow_rows(
        session, FLOW_COLUMNS, caller=caller, flt=flt, first=first, after_id=after_id, where=where
    )
    return Page(
        items=[flow_row(r._mapping) for r in rows[:first]],
        total_count=total,
        has_next=len(rows) > first,
        has_previous=after_id is not None,
    )


async def flow_page_columns(
    session: AsyncSession,
    columns: tuple[str, ...],
    *,
    caller: Caller,
    flt: FlowFilter,
    first: int,
    after_id: int | None = None,
) -> Page[sa.Row[Any]]:
    """The page ``flow_page`` reads (the same filter, scope, order and count), with only
    these labelled columns of ``FLOW_COLUMNS`` and each flow the raw row, values as the
    database driver and the columns' types give them: for readers that map a few columns
    themselves (``mfa.api.compiled``), without building every ``FlowRow``."""
    rows, total = await _flow_rows(
        session, columns, caller=caller, flt=flt, first=first, after_id=after_id, where=None
    )
    return Page(
        items=list(rows[:first]),
        total_count=total,
        has_next=len(rows) > first,
        has_previous=after_id is not None,
    )


async def flows_by_id(
    session: AsyncSession, ids: Iterable[int], *, caller: Caller
) -> dict[int, FlowRow]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    statement, f = _flow_select()
    rows = (
        await session.execute(
            statement.where(
                flow_scope(caller, f.c.park_id, parties=_parties(f)), f.c.id.in_(wanted)
            )
        )
    ).mappings()
    return {m["id"]: flow_row(m) for m in rows}


async def nodes_by_id(
    session: AsyncSession, ids: Iterable[int], *, caller: Caller
) -> dict[int, NodeRow]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = (
        await session.execute(
            sa.select(*(node_t.c[n] for n in _NODE_FIELDS)).where(
                park_scope(caller, node_t.c.park_id), node_t.c.id.in_(wanted)
            )
        )
    ).mappings()
    return {m["id"]: node_row(m) for m in rows}


async def materials_by_id(
    session: AsyncSession, ids: Iterable[int], *, caller: Caller
) -> dict[int, MaterialRow]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = (
        await session.execute(
            sa.select(*(material_t.c[n] for n in _MATERIAL_FIELDS)).where(
                material_t.c.id.in_(wanted)
            )
        )
    ).mappings()
    return {m["id"]: material_row(m) for m in rows}


def _park_row(m: Any) -> ParkRow:
    return ParkRow(
        id=m["id"],
        code=m["code"],
        name=m["name"],
        country=m["country"],
        region=m["region"],
        description=m["description"],
    )


_PARK_COLUMNS = ("id", "code", "name", "country", "region", "description")


async def parks_by_id(
    session: AsyncSession, ids: Iterable[int], *, caller: Caller
) -> dict[int, ParkRow]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = (
        await session.execute(
            sa.select(*(park_t.c[n] for n in _PARK_COLUMNS)).where(
                park_scope(caller, park_t.c.id), park_t.c.id.in_(wanted)
            )
        )
    ).mappings()
    return {m["id"]: _park_row(m) for m in rows}


async def park_by_code(session: AsyncSession, code: str, *, caller: Caller) -> ParkRow | None:
    m = (
        (
            await session.execute(
                sa.select(*(park_t.c[n] for n in _PARK_COLUMNS)).where(
                    park_scope(caller, park_t.c.id), park_t.c.code == code
                )
            )
        )
        .mappings()
        .first()
    )
    return None if m is None else _park_row(m)


async def _page(
    session: AsyncSession,
    table: Any,
    columns: Sequence[str],
    conditions: Sequence[sa.ColumnElement[bool]],
    *,
    first: int,
    after_id: int | None,
) -> tuple[list[Any], int, bool]:
    page_conditions = list(conditions)
    if after_id is not None:
        page_conditions.append(table.c.id > after_id)
    rows = (
        (
            await session.execute(
                sa.select(*(table.c[n] for n in columns))
                .where(*page_conditions)
                .order_by(table.c.id)
                .limit(first + 1)
            )
        )
        .mappings()
        .all()
    )
    total = (
        await session.execute(sa.select(sa.func.count()).select_from(table).where(*conditions))
    ).scalar_one()
    return list(rows[:first]), int(total), len(rows) > first


async def park_page(
    session: AsyncSession, *, caller: Caller, first: int, after_id: int | None = None
) -> Page[ParkRow]:
    rows, total, has_next = await _page(
        session,
        park_t,
        _PARK_COLUMNS,
        [park_scope(caller, park_t.c.id)],
        first=first,
        after_id=after_id,
    )
    return Page([_park_row(m) for m in rows], total, has_next, after_id is not None)


async def node_page(
    session: AsyncSession,
    *,
    caller: Caller,
    first: int,
    after_id: int | None = None,
    park_id: int | None = None,
    kinds: Sequence[NodeKind] = (),
    isic_prefix: str | None = None,
) -> Page[NodeRow]:
    """Enterprises or boundary nodes, optionally of one park, of some kinds, or of a sector
    (ISIC prefix: '24' for basic metals, '2410' for one class)."""
    conditions: list[sa.ColumnElement[bool]] = [park_scope(caller, node_t.c.park_id)]
    if park_id is not None:
        conditions.append(node_t.c.park_id == park_id)
    if kinds:
        conditions.append(node_t.c.kind.in_([k.value for k in kinds]))
    if isic_prefix:
        conditions.append(node_t.c.isic_code.startswith(isic_prefix, autoescape=True))
    rows, total, has_next = await _page(
        session, node_t, _NODE_FIELDS, conditions, first=first, after_id=after_id
    )
    return Page([node_row(m) for m in rows], total, has_next, after_id is not None)


async def material_page(
    session: AsyncSession,
    *,
    caller: Caller,
    first: int,
    after_id: int | None = None,
    kinds: Sequence[MaterialKind] = (),
    search: str | None = None,
) -> Page[MaterialRow]:
    """The catalogue, optionally of some kinds or matching a code / name / HS / EWC prefix."""
    conditions: list[sa.ColumnElement[bool]] = [sa.true()]
    if kinds:
        conditions.append(material_t.c.kind.in_([k.value for k in kinds]))
    if search:
        needle = search.lower()
        conditions.append(
            sa.or_(
                sa.func.lower(material_t.c.code).contains(needle, autoescape=True),
                sa.func.lower(material_t.c.name).contains(needle, autoescape=True),
                material_t.c.hs_code.startswith(search, autoescape=True),
                material_t.c.ewc_code.startswith(search, autoescape=True),
            )
        )
    rows, total, has_next = await _page(
        session, material_t, _MATERIAL_FIELDS, conditions, first=first, after_id=after_id
    )
    return Page([material_row(m) for m in rows], total, has_next, after_id is not None)


@dataclass(frozen=True, slots=True)
class BatchRow:
    id: int
    kind: BatchKind
    source: str | None
    idempotency_key: str | None
    row_count: int
    recorded_by: str
    recorded_at: datetime


async def batches_by_id(
    session: AsyncSession, ids: Iterable[int], *, caller: Caller
) -> dict[int, BatchRow]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = (
        await session.execute(
            sa.select(
                batch_t.c.id,
                batch_t.c.kind,
                batch_t.c.source,
                batch_t.c.idempotency_key,
                batch_t.c.row_count,
                batch_t.c.recorded_by,
                batch_t.c.recorded_at,
            ).where(
                batch_t.c.id.in_(wanted),
                sa.or_(
                    batch_t.c.recorded_by == caller.subject,
                    sa.exists().where(
                        flow_t.c.batch_id == batch_t.c.id,
                        flow_scope(caller, flow_t.c.park_id, parties=_parties(flow_t)),
                    ),
                    sa.exists().where(
                        confirmation_t.c.batch_id == batch_t.c.id,
                        confirmation_t.c.flow_id == flow_t.c.id,
                        flow_scope(caller, flow_t.c.park_id, parties=_parties(flow_t)),
                    ),
                ),
            )
        )
    ).mappings()
    return {m["id"]: BatchRow(**{**m, "kind": BatchKind(m["kind"])}) for m in rows}
