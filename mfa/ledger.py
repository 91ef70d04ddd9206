"""Writing to the ledger: record flows, link the two sides of a transfer, reverse, confirm.

All writes are appends. Functions here validate every row before writing any, never commit
(the caller's transaction decides), and return the ids they wrote so the edge can read back
whatever shape it serves.

A *transfer* is a flow between two enterprises. Either side may report it; the first report
becomes the ledger's flow and a later report by the other side becomes its confirmation:

    relative difference d = |q_flow − q_confirmation| / max(q_flow, q_confirmation)
    status = CONFIRMED if d ≤ tolerance else MISMATCHED

so the transfer is counted once in every sum, and a disagreement stays visible.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mfa.access import Action, Caller, authorize
from mfa.db import begin_writing, insert_rows, savepoint
from mfa.errors import (
    BatchError,
    BatchValidationError,
    ConfirmationError,
    DuplicateError,
    MfaError,
    NotFoundError,
    QuantityError,
    ReversalError,
    SelfFlowError,
)
from mfa.models import (
    BatchKind,
    ConfirmationStatus,
    Flow,
    FlowConfirmation,
    Material,
    MaterialKind,
    NodeKind,
    ParkNode,
    RecordBatch,
    StockReading,
)
from mfa.models._types import utcnow
from mfa.period import check_period
from mfa.units import CANONICAL_UNIT, Dimension, parse_amount, to_canonical

DEFAULT_TRANSFER_TOLERANCE = 0.02

flow_table = Flow.__table__  # type: ignore[attr-defined]
confirmation_table = FlowConfirmation.__table__  # type: ignore[attr-defined]
stock_table = StockReading.__table__  # type: ignore[attr-defined]
node_table = ParkNode.__table__  # type: ignore[attr-defined]
material_table = Material.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class FlowCreate:
    """One report of a flow, as a caller submits it (ids already resolved)."""

    source_id: int
    target_id: int
    material_id: int
    quantity: Decimal | float | int | str
    unit: str
    period_start: date
    period_end: date
    reporting_party_id: int | None = None
    evidence: str | None = None
    relative_uncertainty: float | None = None
    value: Decimal | float | str | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one report became: a new flow, or the confirmation of an existing one."""

    flow_id: int
    confirmation_id: int | None = None

    @property
    def linked(self) -> bool:
        return self.confirmation_id is not None


@dataclass(frozen=True, slots=True)
class BatchRecorded:
    batch_id: int
    entries: tuple[Recorded, ...]
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class NodeRef:
    id: int
    park_id: int
    kind: NodeKind
    code: str

    @property
    def is_enterprise(self) -> bool:
        return self.kind is NodeKind.ENTERPRISE


@dataclass(frozen=True, slots=True)
class MaterialRef:
    id: int
    kind: MaterialKind
    dimension: Dimension


@dataclass(slots=True)
class _Checked:
    """A validated report, ready to insert."""

    values: dict[str, Any]
    is_transfer: bool
    key: tuple[int, int, int, date, date]
    quantity: float
    reporting_party_id: int


_SEAL = object()


class CheckedFlow:
    """One report that passed the ledger's checks (``FlowChecker``), for ``append_checked``.

    Only ``FlowChecker.check`` makes one (the constructor refuses anything but the ledger's seal),
    so whoever holds a ``CheckedFlow`` had its row through the ledger's one validation path:
    an import checks its rows while it validates the file and records them later without
    checking them twice, and no caller can hand the ledger a row that skipped the checks.
    """

    __slots__ = ("_row",)

    def __init__(self, row: _Checked, *, seal: object) -> None:
        if seal is not _SEAL:
            raise TypeError("a CheckedFlow comes from mfa.ledger.FlowChecker, never built")
        self._row = row


@dataclass(frozen=True, slots=True)
class FlowChecks:
    """What ``FlowChecker.check`` found: ``passed`` maps each good entry's index to its checked
    report; ``errors`` are the others' errors, their fields under ``flows.<index>``."""

    passed: dict[int, CheckedFlow]
    errors: list[MfaError]


@dataclass(slots=True)
class _Candidate:
    """A flow (recorded, or earlier in this batch) still waiting for the other side."""

    reporting_party_id: int
    quantity: float
    flow_id: int | None = None
    batch_index: int | None = None


@dataclass(slots=True)
class _Plan:
    flows: list[int] = field(default_factory=list)  # batch indexes written as flows
    confirms: dict[int, _Candidate] = field(default_factory=dict)  # batch index -> its flow


async def load_nodes(session: AsyncSession, ids: Iterable[int]) -> dict[int, NodeRef]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await session.execute(
        sa.select(
            node_table.c.id, node_table.c.park_id, node_table.c.kind, node_table.c.code
        ).where(node_table.c.id.in_(wanted))
    )
    return {r.id: NodeRef(r.id, r.park_id, NodeKind(r.kind), r.code) for r in rows}


async def load_materials(session: AsyncSession, ids: Iterable[int]) -> dict[int, MaterialRef]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await session.execute(
        sa.select(material_table.c.id, material_table.c.kind, material_table.c.dimension).where(
            material_table.c.id.in_(wanted)
        )
    )
    return {r.id: MaterialRef(r.id, MaterialKind(r.kind), Dimension(r.dimension)) for r in rows}


def relative_difference(a: float, b: float) -> float:
    """|a − b| / max(|a|, |b|), and 0 when both are 0."""
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def _check_uncertainty(value: float | None) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        raise QuantityError(
            f"relative uncertainty {value!r} must be a finite fraction ≥ 0 (0.05 for ±5%)",
            field=("relativeUncertainty",),
        )
    return float(value)


_CURRENCY = re.compile(r"^[A-Z]{3}$")


def _check_value(value: Decimal | float | str | None, currency: str | None) -> float | None:
    """The flow's invoiced value: finite, ≥ 0, and always with its ISO 4217 currency."""
    if value is None and currency is None:
        return None
    if value is None or currency is None:
        raise MfaError(
            "give the value together with its currency, or neither",
            field=("currency" if currency is None else "value",),
        )
    if not _CURRENCY.match(currency):
        raise MfaError(
            f"currency {currency!r} must be an ISO 4217 code such as VND or USD",
            field=("currency",),
        )
    try:
        amount = parse_amount(value)
    except QuantityError as exc:
        raise QuantityError(f"value {value!r} is not a finite number", field=("value",)) from exc
    if amount < 0:
        raise QuantityError(f"value {amount} is negative", field=("value",))
    return float(amount)


def _check_evidence(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > 200:
        raise MfaError("evidence is longer than 200 characters", field=("evidence",))
    return value.strip()


def _validate(
    entry: FlowCreate,
    *,
    nodes: dict[int, NodeRef],
    materials: dict[int, MaterialRef],
    caller: Caller,
    recorded_at: datetime,
    batch_id: int | None,
) -> tuple[_Checked | None, list[MfaError]]:
    """Check one report; return it ready to insert, or every error found in it."""
    errors: list[MfaError] = []
    source = nodes.get(entry.source_id)
    target = nodes.get(entry.target_id)
    material = materials.get(entry.material_id)
    if source is None:
        errors.append(NotFoundError(f"no park node with id {entry.source_id}", field=("source",)))
    if target is None:
        errors.append(NotFoundError(f"no park node with id {entry.target_id}", field=("target",)))
    if material is None:
        errors.append(
            NotFoundError(f"no material with id {entry.material_id}", field=("material",))
        )
    if entry.source_id == entry.target_id:
        errors.append(SelfFlowError("a flow needs two different ends", field=("target",)))
    try:
        check_period(entry.period_start, entry.period_end)
    except MfaError as exc:
        errors.append(exc)
    try:
        uncertainty = _check_uncertainty(entry.relative_uncertainty)
        evidence = _check_evidence(entry.evidence)
    except MfaError as exc:
        errors.append(exc)
    try:
        value = _check_value(entry.value, entry.currency)
    except MfaError as exc:
        errors.append(exc)
    canonical: float | None = None
    amount: Decimal | None = None
    if material is not None:
        try:
            canonical, amount = to_canonical(entry.quantity, entry.unit, material.dimension)
        except MfaError as exc:
            errors.append(exc)
    reporter_id = entry.reporting_party_id
    if source is not None and target is not None and source.id != target.id:
        if source.park_id != target.park_id:
            errors.append(
                MfaError(
                    f"target {target.code!r} is in another park than source {source.code!r}",
                    field=("target",),
                )
            )
        if not (source.is_enterprise or target.is_enterprise):
            errors.append(
                MfaError(
                    "neither end is an enterprise of the park: a flow between two boundary "
                    "nodes is outside the park's books",
                    field=("source",),
                )
            )
        if reporter_id is None:  # an enterprise client reports as itself
            reporter_id = (
                caller.enterprise_id
                if caller.enterprise_id in (source.id, target.id)
                else (source.id if source.is_enterprise else target.id)
            )
        if reporter_id not in (source.id, target.id):
            errors.append(
                MfaError(
                    "the reporting party must be the source or the target of the flow",
                    field=("reportingParty",),
                )
            )
        elif not nodes[reporter_id].is_enterprise:
            errors.append(
                MfaError(
                    "the reporting party must be an enterprise, not a boundary node",
                    field=("reportingParty",),
                )
            )
    if errors or source is None or target is None or material is None:
        return None, errors
    assert canonical is not None
    assert amount is not None
    assert reporter_id is not None
    values = {
        "park_id": source.park_id,
        "source_id": source.id,
        "target_id": target.id,
        "material_id": material.id,
        "quantity": canonical,
        "unit": CANONICAL_UNIT[material.dimension],
        "reported_quantity": str(amount),
        "reported_unit": entry.unit.strip(),
        "period_start": entry.period_start,
        "period_end": entry.period_end,
        "reporting_party_id": reporter_id,
        "evidence": evidence,
        "relative_uncertainty": uncertainty,
        "reverses_id": None,
        "reason": None,
        "batch_id": batch_id,
        "recorded_by": caller.subject,
        "recorded_at": recorded_at,
        "value": value,
        "currency": entry.currency if value is not None else None,
    }
    key = (source.id, target.id, material.id, entry.period_start, entry.period_end)
    is_transfer = source.is_enterprise and target.is_enterprise
    return _Checked(values, is_transfer, key, canonical, reporter_id), []


_KEY_NAMES = ("source_id", "target_id", "material_id", "period_start", "period_end")


def _keys_as_rows(
    dialect: str, keys: Sequence[tuple[int, int, int, date, date]]
) -> tuple[sa.FromClause, list[sa.ColumnElement[Any]]]:
    """The transfer keys as a table of one JSON parameter, and its five key columns.

    One parameter, whatever the number of keys, so the statement compiles once and is cached;
    the join lets each database walk the keys and find each through ``ix_flow_transfer_key``.
    (A row-value ``IN`` list makes SQLite scan every flow once per statement instead: 0.14 s
    per batch at 100,000 flows, growing with the ledger.)
    """
    payload = json.dumps(
        [
            {
                "source_id": s,
                "target_id": t,
                "material_id": m,
                "period_start": a.isoformat(),
                "period_end": b.isoformat(),
            }
            for s, t, m, a, b in keys
        ]
    )
    if dialect == "sqlite":
        rows = sa.func.json_each(sa.bindparam("keys", payload)).table_valued("value").alias("k")
        return rows, [sa.func.json_extract(rows.c.value, f"$.{name}") for name in _KEY_NAMES]
    typed = [sa.column(name, flow_table.c[name].type) for name in _KEY_NAMES]
    rows = (
        sa.func.jsonb_to_recordset(sa.cast(sa.bindparam("keys", payload), JSONB))
        .table_valued(*typed)
        .render_derived(with_types=True)
        .alias("k")
    )
    return rows, [rows.c[name] for name in _KEY_NAMES]


async def _open_transfers(
    session: AsyncSession, keys: Sequence[tuple[int, int, int, date, date]]
) -> dict[tuple[int, int, int, date, date], list[_Candidate]]:
    """Recorded transfers with these keys that are neither reversed nor confirmed yet."""
    found: dict[tuple[int, int, int, date, date], list[_Candidate]] = defaultdict(list)
    if not keys:
        return found
    f = flow_table.alias("f")
    reversal = flow_table.alias("reversal")
    rows, key_columns = _keys_as_rows(session.get_bind().dialect.name, sorted(set(keys)))
    on = sa.and_(
        *(f.c[name] == column for name, column in zip(_KEY_NAMES, key_columns, strict=True))
    )
    result = await session.execute(
        sa.select(
            f.c.id,
            f.c.source_id,
            f.c.target_id,
            f.c.material_id,
            f.c.period_start,
            f.c.period_end,
            f.c.reporting_party_id,
            f.c.quantity,
            f.c.reverses_id,
        )
        .select_from(rows.join(f, on))
        .where(
            ~sa.exists().where(reversal.c.reverses_id == f.c.id),
            ~sa.exists().where(confirmation_table.c.flow_id == f.c.id),
        )
        .order_by(f.c.id)
    )
    for r in result:
        if r.reverses_id is not None:  # a reversal is never open (tested here, not in SQL,
            continue  # where SQLite would pick the reverses_id index and scan every flow)
        key = (r.source_id, r.target_id, r.material_id, r.period_start, r.period_end)
        found[key].append(_Candidate(r.reporting_party_id, r.quantity, flow_id=r.id))
    return found


def _confirmation_values(
    checked: _Checked, flow_id: int, candidate: _Candidate, tolerance: float
) -> dict[str, Any]:
    difference = relative_difference(candidate.quantity, checked.quantity)
    status = (
        ConfirmationStatus.CONFIRMED if difference <= tolerance else ConfirmationStatus.MISMATCHED
    )
    v = checked.values
    return {
        "flow_id": flow_id,
        "reporting_party_id": checked.reporting_party_id,
        "quantity": checked.quantity,
        "reported_quantity": v["reported_quantity"],
        "reported_unit": v["reported_unit"],
        "evidence": v["evidence"],
        "status": status,
        "relative_difference": difference,
        "tolerance": tolerance,
        "batch_id": v["batch_id"],
        "recorded_by": v["recorded_by"],
        "recorded_at": v["recorded_at"],
    }


def _lock_key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), signed=True)


async def _serialise(session: AsyncSession, keys: Iterable[str]) -> None:
    """Make concurrent writers of the same transfers or idempotency keys take turns.

    Two sides reporting one transfer at the same moment would each find no open report of the
    other and both insert a flow; two calls with one idempotency key would each find no batch.
    On PostgreSQL a transaction-scoped advisory lock per key, taken in one statement in
    ascending order (so two batches cannot deadlock), makes the second wait for the first to
    commit, and its next statement sees the first's rows. SQLite has one writer: an empty
    write takes its lock now (the driver begins a transaction before it), so the reads that
    follow see every committed row and no other writer can commit before this one.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        await begin_writing(session)
        return
    locks = sorted({_lock_key(key) for key in keys})
    if locks:
        await session.execute(
            sa.text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k"),
            {"keys": locks},
        )


async def _write(
    session: AsyncSession, checked: Sequence[_Checked], *, tolerance: float
) -> list[Recorded]:
    """Link each transfer report to an open report of the other side, then insert."""
    await _serialise(
        session,
        {f"transfer:{s}:{t}:{m}" for s, t, m, *_ in (c.key for c in checked if c.is_transfer)},
    )
    open_by_key = await _open_transfers(session, [c.key for c in checked if c.is_transfer])
    plan = _Plan()
    for index, row in enumerate(checked):
        candidates = open_by_key.get(row.key) if row.is_transfer else None
        match = next(
            (c for c in candidates or () if c.reporting_party_id != row.reporting_party_id), None
        )
        if match is not None:
            assert candidates is not None
            candidates.remove(match)
            plan.confirms[index] = match
            continue
        plan.flows.append(index)
        if row.is_transfer:
            open_by_key.setdefault(row.key, []).append(
                _Candidate(row.reporting_party_id, row.quantity, batch_index=index)
            )
    flow_ids: dict[int, int] = {}
    if plan.flows:
        inserted = await insert_rows(session, flow_table, [checked[i].values for i in plan.flows])
        flow_ids = dict(zip(plan.flows, inserted, strict=True))
    confirmation_ids: dict[int, int] = {}
    if plan.confirms:
        order = list(plan.confirms)
        values = []
        for index in order:
            candidate = plan.confirms[index]
            target_id = (
                candidate.flow_id
                if candidate.flow_id is not None
                else flow_ids[candidate.batch_index]  # type: ignore[index]
            )
            flow_ids[index] = target_id
            values.append(_confirmation_values(checked[index], target_id, candidate, tolerance))
        inserted = await insert_rows(session, confirmation_table, values)
        confirmation_ids = dict(zip(order, inserted, strict=True))
    return [Recorded(flow_ids[i], confirmation_ids.get(i)) for i in range(len(checked))]


def _validate_all(
    entries: Sequence[FlowCreate],
    *,
    nodes: dict[int, NodeRef],
    materials: dict[int, MaterialRef],
    caller: Caller,
    batch_id: int | None,
    field_prefix: tuple[str, ...],
) -> tuple[dict[int, _Checked], list[MfaError]]:
    """Every entry checked (``_validate``): the good ones by index, and every error found."""
    recorded_at = utcnow()
    checked: dict[int, _Checked] = {}
    errors: list[MfaError] = []
    for index, entry in enumerate(entries):
        row, row_errors = _validate(
            entry,
            nodes=nodes,
            materials=materials,
            caller=caller,
            recorded_at=recorded_at,
            batch_id=batch_id,
        )
        if row_errors:
            prefix = (*field_prefix, str(index)) if field_prefix else ()
            errors.extend(e.at(*prefix) for e in row_errors)
        elif row is not None:
            checked[index] = row
    return checked, errors


def _authorize(caller: Caller, checked: Iterable[_Checked]) -> None:
    for park_id, reporter_id in {(c.values["park_id"], c.reporting_party_id) for c in checked}:
        authorize(caller, Action.RECORD, park_id=park_id, node_id=reporter_id)


async def _check_all(
    session: AsyncSession,
    entries: Sequence[FlowCreate],
    *,
    caller: Caller,
    batch_id: int | None,
    field_prefix: tuple[str, ...],
) -> list[_Checked]:
    """Every entry checked, or every error found raised at once."""
    checked, errors = _validate_all(
        entries,
        nodes=await load_nodes(
            session,
            [e.source_id for e in entries]
            + [e.target_id for e in entries]
            + [e.reporting_party_id for e in entries if e.reporting_party_id is not None],
        ),
        materials=await load_materials(session, [e.material_id for e in entries]),
        caller=caller,
        batch_id=batch_id,
        field_prefix=field_prefix,
    )
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise BatchValidationError(errors)
    _authorize(caller, checked.values())
    return list(checked.values())


async def record_flow(
    session: AsyncSession,
    entry: FlowCreate,
    *,
    caller: Caller,
    tolerance: float = DEFAULT_TRANSFER_TOLERANCE,
) -> Recorded:
    """Record one report; if it is the other side of an open transfer, confirm that instead."""
    checked = await _check_all(session, [entry], caller=caller, batch_id=None, field_prefix=())
    (recorded,) = await _write(session, checked, tolerance=tolerance)
    return recorded


_HASHED_FIELDS = sorted(f.name for f in fields(FlowCreate))
_HASH_ENCODER = json.JSONEncoder(default=str, sort_keys=True)


def batch_hash(entries: Sequence[FlowCreate]) -> str:
    """SHA-256 of the rows as submitted, to tell a replay from a different batch.

    Each row is its fields as sorted JSON (``str`` for decimals and dates), one per line;
    read with getattr rather than ``dataclasses.asdict``, which deep-copies every field.
    """
    digest = hashlib.sha256()
    for entry in entries:
        row = {name: getattr(entry, name) for name in _HASHED_FIELDS}
        digest.update(_HASH_ENCODER.encode(row).encode())
        digest.update(b"\n")
    return digest.hexdigest()


async def _replay(
    session: AsyncSession, idempotency_key: str, content_hash: str
) -> BatchRecorded | None:
    batch_table = RecordBatch.__table__  # type: ignore[attr-defined]
    existing = (
        await session.execute(
            sa.select(batch_table.c.id, batch_table.c.content_hash).where(
                batch_table.c.idempotency_key == idempotency_key
            )
        )
    ).first()
    if existing is None:
        return None
    if existing.content_hash != content_hash:
        raise DuplicateError(
            f"idempotency key {idempotency_key!r} was already used for a different batch: "
            "use a new key for new rows",
            field=("idempotencyKey",),
        )
    flows = await session.execute(
        sa.select(flow_table.c.id).where(flow_table.c.batch_id == existing.id).order_by("id")
    )
    confirmations = await session.execute(
        sa.select(confirmation_table.c.id, confirmation_table.c.flow_id)
        .where(confirmation_table.c.batch_id == existing.id)
        .order_by("id")
    )
    entries = [Recorded(r) for r in flows.scalars()] + [
        Recorded(r.flow_id, r.id) for r in confirmations
    ]
    return BatchRecorded(existing.id, tuple(entries), replayed=True)


async def record_flows(
    session: AsyncSession,
    entries: Sequence[FlowCreate],
    *,
    caller: Caller,
    kind: BatchKind = BatchKind.API,
    source: str | None = None,
    idempotency_key: str | None = None,
    max_size: int = 10_000,
    tolerance: float = DEFAULT_TRANSFER_TOLERANCE,
) -> BatchRecorded:
    """Record a batch all-or-nothing: any bad row raises and nothing of the batch is written.

    With an ``idempotency_key`` already used for the same rows, nothing is written and the
    first submission's result is returned (``replayed``).
    """
    if not entries:
        raise BatchError("the batch is empty", field=("flows",))
    if len(entries) > max_size:
        raise BatchError(
            f"the batch has {len(entries)} rows; send at most {max_size} per call",
            field=("flows",),
        )
    # The hash tells a replay from a different batch under the same key; without a key there
    # is nothing to compare it with, and it costs ~15 µs a row.
    content_hash = batch_hash(entries) if idempotency_key is not None else None
    if idempotency_key is not None and content_hash is not None:
        await _serialise(session, [f"batch:{idempotency_key}"])
        replay = await _replay(session, idempotency_key, content_hash)
        if replay is not None:
            return replay
    batch = RecordBatch(
        kind=kind,
        source=source,
        idempotency_key=idempotency_key,
        content_hash=content_hash,
        row_count=len(entries),
        recorded_by=caller.subject,
    )
    # Validate before the batch row exists, so a refused batch leaves no trace at all.
    checked = await _check_all(
        session, entries, caller=caller, batch_id=None, field_prefix=("flows",)
    )
    session.add(batch)
    await session.flush()
    assert batch.id is not None
    for row in checked:
        row.values["batch_id"] = batch.id
    recorded = await _write(session, checked, tolerance=tolerance)
    return BatchRecorded(batch.id, tuple(recorded))


@dataclass(frozen=True, slots=True)
class FlowChecker:
    """The ledger's checks, those ``record_flows`` runs, against the nodes and materials
    ``flow_checker`` loaded once: plain Python, no database, so that a caller checking many
    entries can run them off the event loop. (An import checks each chunk of its file in a
    worker thread while the previous chunk is written.)"""

    nodes: dict[int, NodeRef]
    materials: dict[int, MaterialRef]
    caller: Caller

    def check(self, entries: Sequence[FlowCreate]) -> FlowChecks:
        """Check ``entries`` as ``record_flows`` would, without writing: the good ones, ready
        for ``append_checked``, and the errors of the others (not raised, so that a caller
        that records the good rows only can name the bad ones). A node or material that was
        not loaded is reported unknown. The caller must be allowed to record every good
        entry."""
        checked, errors = _validate_all(
            entries,
            nodes=self.nodes,
            materials=self.materials,
            caller=self.caller,
            batch_id=None,
            field_prefix=("flows",),
        )
        _authorize(self.caller, checked.values())
        return FlowChecks({i: CheckedFlow(c, seal=_SEAL) for i, c in checked.items()}, errors)


async def flow_checker(
    session: AsyncSession, *, caller: Caller, node_ids: Iterable[int], material_ids: Iterable[int]
) -> FlowChecker:
    """A ``FlowChecker`` for entries among these nodes and materials, as they are now."""
    return FlowChecker(
        await load_nodes(session, node_ids), await load_materials(session, material_ids), caller
    )


async def append_checked(
    session: AsyncSession,
    rows: Sequence[CheckedFlow],
    *,
    batch_id: int,
    tolerance: float = DEFAULT_TRANSFER_TOLERANCE,
) -> list[Recorded]:
    """Record reports ``FlowChecker.check`` passed under a batch the caller opened (an import
    written in chunks, all in the caller's one transaction), linking transfers as
    ``record_flows`` does; their ids, in the order of ``rows``. Each row is recorded once:
    it is stamped with ``batch_id`` and the time of this call."""
    recorded_at = utcnow()
    checked = [row._row for row in rows]
    for c in checked:
        c.values["batch_id"] = batch_id
        c.values["recorded_at"] = recorded_at
    return await _write(session, checked, tolerance=tolerance)


async def _get_flow(session: AsyncSession, flow_id: int, *, field: str) -> sa.Row[Any]:
    row = (await session.execute(sa.select(flow_table).where(flow_table.c.id == flow_id))).first()
    if row is None:
        raise NotFoundError(f"no flow with id {flow_id}", field=(field,))
    return row


async def _reversal_of(session: AsyncSession, flow_id: int) -> int | None:
    return (
        await session.execute(sa.select(flow_table.c.id).where(flow_table.c.reverses_id == flow_id))
    ).scalar()


async def reverse_flow(
    session: AsyncSession,
    flow_id: int,
    *,
    caller: Caller,
    reason: str,
    evidence: str | None = None,
) -> int:
    """Append the entry that cancels ``flow_id``; returns the reversal's id.

    The reversal repeats the original's ends, material and period with the opposite quantity,
    so every sum that includes both nets to zero. A reversal cannot itself be reversed (record
    the flow again instead) and a flow is reversed at most once.
    """
    if not reason.strip():
        raise MfaError("say why the flow is reversed", field=("reason",))
    if len(reason) > 500:
        raise MfaError("reason is longer than 500 characters", field=("reason",))
    original = await _get_flow(session, flow_id, field="flow")
    authorize(caller, Action.RECORD, park_id=original.park_id, node_id=original.reporting_party_id)
    if original.reverses_id is not None:
        raise ReversalError(
            f"flow {flow_id} is itself a reversal and cannot be reversed: record the original "
            "flow again if the reversal was a mistake",
            field=("flow",),
        )
    if await _reversal_of(session, flow_id) is not None:
        raise ReversalError(f"flow {flow_id} is already reversed", field=("flow",))
    values = dict(original._mapping)
    del values["id"]
    reported = Decimal(original.reported_quantity)
    values.update(
        quantity=-original.quantity if original.quantity else 0.0,
        value=-original.value if original.value else original.value,
        reported_quantity=str(-reported if reported else reported),
        reverses_id=flow_id,
        reason=reason.strip(),
        evidence=_check_evidence(evidence) or original.evidence,
        batch_id=None,
        recorded_by=caller.subject,
        recorded_at=utcnow(),
    )
    try:
        async with savepoint(session):
            result = await session.execute(
                sa.insert(flow_table).returning(flow_table.c.id), [values]
            )
    except IntegrityError as exc:  # a concurrent reversal won the unique constraint
        raise ReversalError(f"flow {flow_id} is already reversed", field=("flow",)) from exc
    return int(result.scalar_one())


async def confirm_flow(
    session: AsyncSession,
    flow_id: int,
    *,
    caller: Caller,
    quantity: Decimal | float | str | None = None,
    unit: str | None = None,
    reporting_party_id: int | None = None,
    evidence: str | None = None,
    tolerance: float = DEFAULT_TRANSFER_TOLERANCE,
) -> int:
    """The counterparty's report of a transfer already in the ledger; returns its id.

    Without a quantity the counterparty accepts the recorded figure as it stands. A newer
    confirmation supersedes an older one; both stay in the ledger.
    """
    flow = await _get_flow(session, flow_id, field="flow")
    counterparty = flow.target_id if flow.reporting_party_id == flow.source_id else flow.source_id
    authorize(caller, Action.RECORD, park_id=flow.park_id, node_id=counterparty)
    if flow.reverses_id is not None or await _reversal_of(session, flow_id) is not None:
        raise ConfirmationError(
            f"flow {flow_id} is a reversal or reversed: there is nothing to confirm",
            field=("flow",),
        )
    nodes = await load_nodes(session, [flow.source_id, flow.target_id])
    if not (nodes[flow.source_id].is_enterprise and nodes[flow.target_id].is_enterprise):
        raise ConfirmationError(
            "only a transfer between two enterprises has a counterparty to confirm it",
            field=("flow",),
        )
    if reporting_party_id is not None and reporting_party_id != counterparty:
        raise ConfirmationError(
            f"flow {flow_id} was reported by {nodes[flow.reporting_party_id].code!r}; only the "
            f"counterparty {nodes[counterparty].code!r} can confirm it",
            field=("reportingParty",),
        )
    materials = await load_materials(session, [flow.material_id])
    if (quantity is None) != (unit is None):
        raise MfaError("give both quantity and unit, or neither", field=("unit",))
    if quantity is None or unit is None:
        quantity, unit = flow.reported_quantity, flow.reported_unit
    canonical, amount = to_canonical(quantity, unit, materials[flow.material_id].dimension)
    checked = _Checked(
        values={
            "reported_quantity": str(amount),
            "reported_unit": unit.strip(),
            "evidence": _check_evidence(evidence),
            "batch_id": None,
            "recorded_by": caller.subject,
            "recorded_at": utcnow(),
        },
        is_transfer=True,
        key=(flow.source_id, flow.target_id, flow.material_id, flow.period_start, flow.period_end),
        quantity=canonical,
        reporting_party_id=counterparty,
    )
    values = _confirmation_values(
        checked, flow_id, _Candidate(flow.reporting_party_id, flow.quantity), tolerance
    )
    result = await session.execute(
        sa.insert(confirmation_table).returning(confirmation_table.c.id), [values]
    )
    return int(result.scalar_one())


@dataclass(frozen=True, slots=True)
class StockCreate:
    enterprise_id: int
    material_id: int
    on_date: date
    quantity: Decimal | float | int | str
    unit: str
    evidence: str | None = None


async def record_stocks(
    session: AsyncSession,
    entries: Sequence[StockCreate],
    *,
    caller: Caller,
    batch_id: int | None = None,
) -> list[int]:
    """Append stock readings (end-of-day stock of a material at an enterprise)."""
    nodes = await load_nodes(session, [e.enterprise_id for e in entries])
    materials = await load_materials(session, [e.material_id for e in entries])
    now = utcnow()
    values: list[dict[str, Any]] = []
    errors: list[MfaError] = []
    for index, entry in enumerate(entries):
        prefix = ("stocks", str(index)) if len(entries) > 1 else ()
        node = nodes.get(entry.enterprise_id)
        material = materials.get(entry.material_id)
        if node is None or not node.is_enterprise:
            errors.append(
                NotFoundError(
                    f"no enterprise with id {entry.enterprise_id}", field=(*prefix, "enterprise")
                )
            )
        if material is None:
            errors.append(
                NotFoundError(
                    f"no material with id {entry.material_id}", field=(*prefix, "material")
                )
            )
            continue
        try:
            canonical, amount = to_canonical(entry.quantity, entry.unit, material.dimension)
            evidence = _check_evidence(entry.evidence)
        except MfaError as exc:
            errors.append(exc.at(*prefix))
            continue
        if node is None:
            continue
        authorize(caller, Action.RECORD, park_id=node.park_id, node_id=node.id)
        values.append(
            {
                "enterprise_id": node.id,
                "material_id": material.id,
                "on_date": entry.on_date,
                "quantity": canonical,
                "unit": CANONICAL_UNIT[material.dimension],
                "reported_quantity": str(amount),
                "reported_unit": entry.unit.strip(),
                "evidence": evidence,
                "batch_id": batch_id,
                "recorded_by": caller.subject,
                "recorded_at": now,
            }
        )
    if errors:
        raise errors[0] if len(errors) == 1 else BatchValidationError(errors)
    if not values:
        return []
    return await insert_rows(session, stock_table, values)
