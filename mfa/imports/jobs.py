"""Import jobs: a file's movements recorded as one ledger batch, all or nothing, once.

A job reads the file once, in chunks so memory stays bounded. Every row is checked
(``mfa.imports.rows``), looked up among the movements already imported, and its flow checked
by the ledger itself (``mfa.ledger.FlowChecker``, the checks ``record_flows`` runs). Rejected
rows go to a CSV file with an ``error`` column. A dry run writes nothing (status
``VALIDATED``, counts and errors kept). Otherwise each chunk's new movements are recorded as
soon as they are checked (``mfa.ledger.append_checked``, which does not check them again),
with each movement's natural key in ``imported_movement``, under one ``RecordBatch`` (kind
``file``, the file's SHA-256 as its content hash, ``profile: file name`` as its source)
whose row is inserted after the last chunk, when its ``row_count`` is known (``_Batch``).

The job runs in one transaction with its final status, so the batch is recorded whole or not
at all: a rejected row (unless the caller asked for the good rows only), a failure, or a
process killed half-way, leaves the ledger as it was. A movement whose natural key (per
reporting enterprise and ERP) is already imported is skipped, so repeating a file or
importing an overlapping later export records nothing twice; one whose figures changed since
is rejected, since the ledger corrects by reversal.

Progress of running jobs is kept in this process (``PROGRESS``): a SQLite database cannot
take progress updates while the job's own transaction holds its write lock.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import hashlib
import json
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mfa.access import Action, Caller, authorize
from mfa.audit import audited_transaction
from mfa.db import begin_writing, insert_rows, transaction
from mfa.errors import DuplicateError, MfaError, NotFoundError
from mfa.imports import lease
from mfa.imports.errors import ImportFileError, ImportJobError
from mfa.imports.profiles import Profile, load_profile
from mfa.imports.reader import TableFile, open_table, read_chunks, rejected_csv
from mfa.imports.rows import (
    Checked,
    FileKey,
    Lookup,
    Movement,
    NodeInfo,
    RowChecker,
    RowError,
    align_columns,
    drop_repeats,
    file_row,
    missing_columns,
    records_of,
)
from mfa.ledger import (
    DEFAULT_TRANSFER_TOLERANCE,
    CheckedFlow,
    FlowChecker,
    Recorded,
    append_checked,
    flow_checker,
)
from mfa.models import (
    BatchKind,
    ImportedMovement,
    ImportJob,
    ImportStatus,
    Material,
    NodeKind,
    Park,
    ParkNode,
    RecordBatch,
)
from mfa.models._types import utcnow
from mfa.registry import get_park
from mfa.settings import Settings
from mfa.units import Dimension

CHUNK_ROWS = 10_000
KEPT_ERRORS = 1000  # errors stored on the job; ``error_count`` counts them all

node_table = ParkNode.__table__  # type: ignore[attr-defined]
material_table = Material.__table__  # type: ignore[attr-defined]
imported_movement_table = ImportedMovement.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class JobProgress:
    """``phase`` is ``validating`` (a dry run) or ``recording``; ``rows_done`` counts the
    file's rows read so far, of ``rows_total`` where the file's format records it (Parquet).
    A CSV file or a sheet is read once, so its rows are counted only as they are read."""

    phase: str
    rows_done: int
    rows_total: int | None = None


PROGRESS: dict[int, JobProgress] = {}
ProgressCallback = Callable[[JobProgress], None]


@dataclass(frozen=True, slots=True)
class ImportRequest:
    """What a caller asks to import: a stored file, the profile, the park and the options."""

    park_id: int
    profile: str
    path: Path
    file_name: str
    enterprise_id: int | None = None
    dry_run: bool = False
    good_rows_only: bool = False
    encoding: str | None = None
    sheet: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class JobSettings:
    """The service settings a job reads."""

    datasets: Path
    import_dir: Path
    max_bytes: int
    tolerance: float = DEFAULT_TRANSFER_TOLERANCE
    chunk_rows: int = CHUNK_ROWS

    @classmethod
    def of(cls, settings: Settings) -> JobSettings:
        return cls(
            datasets=settings.datasets_dir,
            import_dir=settings.import_dir,
            max_bytes=settings.import_max_bytes,
            tolerance=settings.transfer_tolerance,
        )


_Ready = tuple[Movement, CheckedFlow]
"""A movement to record, with its flow as the ledger checked it."""


@dataclass(slots=True)
class _Tally:
    rows_total: int = 0
    rows_ignored: int = 0
    rows_already_imported: int = 0
    rows_rejected: int = 0
    to_record: int = 0
    flows_recorded: int = 0
    flows_linked: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add_errors(self, errors: Sequence[RowError]) -> None:
        self.error_count += len(errors)
        room = KEPT_ERRORS - len(self.errors)
        self.errors.extend(e.as_dict() for e in errors[: max(room, 0)])


class _Rejected(Exception):
    """Rows were rejected and the caller wants all or nothing: roll the transaction back."""

    def __init__(self, tally: _Tally) -> None:
        super().__init__("rows rejected")
        self.tally = tally


def file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def rejected_path(import_dir: Path, job_id: int) -> Path:
    return import_dir / f"job-{job_id}-rejected.csv"


async def create_job(
    session: AsyncSession, request: ImportRequest, *, caller: Caller, settings: JobSettings
) -> ImportJob:
    """Register a file for import (status ``PENDING``) after checking what can be checked
    without reading it; with an idempotency key already used, the existing job."""
    authorize(caller, Action.RECORD, park_id=request.park_id)
    await get_park(session, request.park_id)
    profile = load_profile(request.profile, datasets=settings.datasets)
    if profile.enterprise is None and request.enterprise_id is None:
        raise MfaError(
            f"profile {profile.name} reads one enterprise's books: name the enterprise",
            field=("enterprise",),
        )
    if request.enterprise_id is not None:
        node = await session.get(ParkNode, request.enterprise_id)
        if node is None or node.park_id != request.park_id or node.kind != NodeKind.ENTERPRISE:
            raise NotFoundError(
                f"no enterprise with id {request.enterprise_id} in the park",
                field=("enterprise",),
            )
    file_hash, size = file_sha256(request.path)
    if request.idempotency_key is not None:
        existing = (
            await session.execute(
                sa.select(ImportJob).where(
                    ImportJob.idempotency_key == request.idempotency_key  # type: ignore[arg-type]
                )
            )
        ).scalar_one_or_none()
        if existing is not None:
            if existing.file_hash != file_hash:
                raise DuplicateError(
                    f"idempotency key {request.idempotency_key!r} was used for another file: "
                    "use a new key for a new file",
                    field=("idempotencyKey",),
                )
            return existing
    job = ImportJob(
        park_id=request.park_id,
        enterprise_id=request.enterprise_id,
        profile=profile.name,
        file_name=request.file_name[:255],
        file_hash=file_hash,
        file_size=size,
        stored_path=str(request.path),
        encoding=request.encoding,
        sheet=request.sheet,
        idempotency_key=request.idempotency_key,
        dry_run=request.dry_run,
        good_rows_only=request.good_rows_only,
        status=ImportStatus.PENDING,
        created_by=caller.subject,
    )
    session.add(job)
    await session.flush()
    return job


async def get_job(session: AsyncSession, job_id: int, *, caller: Caller) -> ImportJob:
    job = await session.get(ImportJob, job_id)
    if job is None:
        raise NotFoundError(f"no import job with id {job_id}", field=("id",))
    authorize(caller, Action.READ, park_id=job.park_id)
    return job


async def _lookup(session: AsyncSession, park_id: int, enterprise_id: int | None) -> Lookup:
    nodes: dict[str, NodeInfo] = {}
    by_code: dict[str, NodeInfo] = {}
    rows = await session.execute(
        sa.select(
            node_table.c.id,
            node_table.c.code,
            node_table.c.kind,
            node_table.c.tax_id,
            node_table.c.name,
        ).where(node_table.c.park_id == park_id)
    )
    for r in rows:
        info = NodeInfo(r.id, NodeKind(r.kind), r.code)
        by_code[r.code] = info
        # A partner may be named by its code, its tax id or its name (case aside); the code
        # wins over the others, a tax id over a name.
        nodes.setdefault(r.name.casefold(), info)
        if r.tax_id:
            nodes[r.tax_id] = info
    nodes.update(by_code)
    materials = {
        r.code: (r.id, Dimension(r.dimension))
        for r in await session.execute(
            sa.select(material_table.c.code, material_table.c.id, material_table.c.dimension)
        )
    }
    enterprise = next((n for n in by_code.values() if n.id == enterprise_id), None)
    return Lookup(nodes=nodes, materials=materials, enterprise=enterprise)


def _rows_source(
    dialect: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
) -> tuple[str, dict[str, Any]]:
    """``rows`` as a derived table ``k`` of the named ``columns`` (name, PostgreSQL type), to
    join or insert from: one statement per chunk whatever its size, compiled once and cached.

    PostgreSQL unnests one array per column; SQLite walks one JSON array of rows
    (``json_each``), as ``mfa.ledger._keys_as_rows`` does for transfer keys. A join with it is
    walked key by key through the other table's index; a row-value ``IN`` list needed 25
    statements of 400 keys per chunk on SQLite, and was planned as a scan of the (never
    analysed) temporary key table per statement on PostgreSQL.
    """
    names = [name for name, _ in columns]
    if dialect == "postgresql":
        arrays = ", ".join(f"CAST(:c{i} AS {kind}[])" for i, (_, kind) in enumerate(columns))
        params = {f"c{i}": [row[i] for row in rows] for i in range(len(columns))}
        return f"unnest({arrays}) AS k({', '.join(names)})", params
    cells = ", ".join(f"json_extract(value, '$[{i}]') AS {name}" for i, name in enumerate(names))
    return f"(SELECT {cells} FROM json_each(:rows)) AS k", {"rows": json.dumps(rows)}


async def _imported(
    session: AsyncSession, system: str, movements: Sequence[Movement]
) -> dict[tuple[int, str], str]:
    """``(reporting party, natural key) → content hash`` of these movements already imported."""
    keys = sorted({(m.entry.reporting_party_id or 0, m.key) for m in movements})
    if not keys:
        return {}
    source, params = _rows_source(
        session.get_bind().dialect.name, (("p", "integer"), ("n", "text")), keys
    )
    rows = await session.execute(
        sa.text(
            f"SELECT m.reporting_party_id, m.natural_key, m.content_hash FROM {source} "
            "JOIN imported_movement m ON m.reporting_party_id = k.p AND m.system = :system "
            "AND m.natural_key = k.n"
        ),
        {**params, "system": system},
    )
    return {(r.reporting_party_id, r.natural_key): r.content_hash for r in rows}


def _new_movements(
    profile: Profile, checked: Checked, imported: dict[tuple[int, str], str]
) -> tuple[list[Movement], int]:
    """The movements not imported yet, and how many were (same figures). A movement imported
    with other figures becomes an error of ``checked``."""
    fresh: list[Movement] = []
    repeats = 0
    for m in checked.movements:
        earlier = imported.get((m.entry.reporting_party_id or 0, m.key))
        if earlier is None:
            fresh.append(m)
        elif earlier == m.content_hash:
            repeats += 1
        else:
            checked.errors.append(
                RowError(
                    m.row,
                    profile.key[0],
                    m.key,
                    "this movement was imported before with other figures: reverse the "
                    "recorded flow and record the correction",
                )
            )
    return fresh, repeats


_FILE_KEYS = "import_file_key"


async def _open_file_keys(session: AsyncSession) -> None:
    """A temporary table of the natural keys met so far in the file, with the first row that
    claimed each: duplicates inside a file are found exactly, across chunks, in memory that
    does not grow with the file. It lives in the job's transaction (PostgreSQL drops it at
    commit or rollback; on SQLite, where it outlives the transaction on its connection, the
    next job's ``DROP`` clears it)."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    await session.execute(
        sa.text(f"DROP TABLE IF EXISTS {'' if postgresql else 'temp.'}{_FILE_KEYS}")
    )
    await session.execute(
        sa.text(
            f"CREATE TEMPORARY TABLE {_FILE_KEYS} (reporting_party_id INTEGER NOT NULL, "
            "natural_key VARCHAR(200) NOT NULL, first_row INTEGER NOT NULL, "
            "PRIMARY KEY (reporting_party_id, natural_key))"
            + (" ON COMMIT DROP" if postgresql else "")
        )
    )


async def _refuse_repeats(session: AsyncSession, profile: Profile, checked: Checked) -> None:
    """Refuse the chunk's rows whose key an earlier row of the file claimed, and remember the
    keys it claims first.

    The chunk's first claim of each key is inserted, skipping keys already there (one
    statement); only when some were skipped does a second look up the earlier chunks' rows
    that claimed them."""
    first: dict[FileKey, int] = {}
    for file_key, row in checked.claims:  # in row order: the first claim in the chunk wins
        first.setdefault(file_key, row)
    if not first:
        return
    source, params = _rows_source(
        session.get_bind().dialect.name,
        (("p", "integer"), ("n", "text"), ("r", "integer")),
        [(*file_key, row) for file_key, row in first.items()],
    )
    claimed = await session.execute(
        sa.text(
            f"INSERT INTO {_FILE_KEYS} (reporting_party_id, natural_key, first_row) "
            f"SELECT p, n, r FROM {source} WHERE true ON CONFLICT DO NOTHING"
        ),
        params,
    )
    if claimed.rowcount < len(first):  # type: ignore[attr-defined]
        earlier = await session.execute(
            sa.text(
                f"SELECT f.reporting_party_id, f.natural_key, f.first_row FROM {source} "
                f"JOIN {_FILE_KEYS} f ON f.reporting_party_id = k.p AND f.natural_key = k.n "
                "AND f.first_row <> k.r"
            ),
            params,
        )
        for r in earlier:
            first[(r.reporting_party_id, r.natural_key)] = r.first_row
    drop_repeats(profile, checked, first)


@dataclass(slots=True)
class _Chunk:
    """One chunk of the file as read and checked off the event loop: its cells, its rows'
    checks (``RowChecker``), and the ledger's verdict on each good row's flow by file row
    (``passed``, ``refused``), which ``_screen`` applies to the rows that turn out new."""

    cells: pd.DataFrame
    checked: Checked
    passed: dict[int, CheckedFlow]
    refused: dict[int, list[RowError]]


class _FileRun:
    """Reads one job's file chunk by chunk and checks each chunk, rows and flows."""

    def __init__(
        self,
        table: TableFile,
        profile: Profile,
        lookup: Lookup,
        flows: FlowChecker,
        chunk_rows: int,
    ):
        self.table = table
        self.profile = profile
        self.lookup = lookup
        self.flows = flows
        self.chunk_rows = chunk_rows

    def chunks(self) -> Generator[_Chunk]:
        """Each chunk read and checked: plain Python, no database, so that it can run in a
        worker thread (``_ReadAhead``)."""
        rows = RowChecker(self.profile, self.lookup, decimal=self.table.decimal)
        for raw in read_chunks(self.table, chunk_rows=self.chunk_rows):
            cells = align_columns(raw, self.profile)
            checked = rows.check(cells)
            verdict = self.flows.check([m.entry for m in checked.movements])
            refused: dict[int, list[RowError]] = {}
            for error in _ledger_errors(verdict.errors, checked.movements):
                refused.setdefault(error.row, []).append(error)
            passed = {checked.movements[i].row: flow for i, flow in verdict.passed.items()}
            yield _Chunk(cells, checked, passed, refused)


class _ReadAhead:
    """The items of an iterator, each produced in a worker thread, the next one started when
    the caller says so (``start``).

    An import starts reading and checking the next chunk once the current one is screened,
    just before it is written: the database then inserts while Python reads. Started as soon
    as the current chunk was taken, the read ran alongside the screening, competing with it
    for the GIL, and was done before the inserts began: 10.8–11.5 s for 100,000 rows on
    PostgreSQL against 11.0–11.7 s without reading ahead, and 9.0 s started before the
    inserts (docs/performance.md). A worker thread also leaves the event loop of a job run
    inside the API's process free to answer other requests.
    """

    def __init__(self, items: Generator[_Chunk]) -> None:
        self._items = items
        self._next: asyncio.Future[_Chunk | None] | None = None

    def start(self) -> None:
        if self._next is None:
            self._next = asyncio.ensure_future(asyncio.to_thread(next, self._items, None))

    async def next(self) -> _Chunk | None:
        self.start()
        assert self._next is not None
        item = await self._next
        self._next = None
        return item

    async def close(self) -> None:
        """Wait for a read still running (its error, if any, is the job's failure already
        or moot), then close the iterator and its file."""
        if self._next is not None:
            await asyncio.gather(self._next, return_exceptions=True)
            self._next = None
        self._items.close()


def _write_rejected(
    writer: Any, chunk: pd.DataFrame, errors: Sequence[RowError], header: list[str]
) -> None:
    """Copy the chunk's rejected rows to the rejected-rows CSV, each with its reasons; only
    those rows are turned into records (a chunk with none costs nothing)."""
    reasons: dict[int, list[str]] = {}
    for e in errors:
        reasons.setdefault(e.row, []).append(f"{e.column}: {e.reason}")
    if not reasons:
        return
    rejected = chunk[[file_row(int(index)) in reasons for index in chunk.index]]
    for index, cells in zip(rejected.index, records_of(rejected), strict=True):
        row = file_row(int(index))
        writer.writerow([row, *(cells.get(c, "") for c in header), "; ".join(reasons[row])])


async def _screen(session: AsyncSession, run: _FileRun, chunk: _Chunk) -> tuple[list[_Ready], int]:
    """The chunk's movements to record, each with its flow as the ledger checked it, and how
    many were imported before. Every refusal becomes an error of the chunk: a key an earlier
    row of the file claimed, a movement imported before with other figures, a flow the
    ledger refused (named only for a movement that is new, as it is the only kind recorded)."""
    checked = chunk.checked
    await _refuse_repeats(session, run.profile, checked)
    imported = await _imported(session, run.profile.system, checked.movements)
    fresh, repeats = _new_movements(run.profile, checked, imported)
    for m in fresh:
        checked.errors.extend(chunk.refused.get(m.row, ()))
    checked.errors.sort(key=lambda e: e.row)
    ready = [(m, chunk.passed[m.row]) for m in fresh if m.row in chunk.passed]
    return ready, repeats


async def _import(
    session: AsyncSession,
    run: _FileRun,
    job: ImportJob,
    *,
    caller: Caller,
    settings: JobSettings,
    progress: ProgressCallback,
) -> _Tally:
    """Read the file once, checking each chunk and, unless this is a dry run, recording its
    new movements at once under a batch whose row is inserted last (``_Batch``).

    Recording a chunk cannot change how a later chunk is checked: a key an earlier row of
    the file claimed is refused by ``_refuse_repeats`` before ``_imported`` could find it
    among the movements just written, and the ledger's checks (``FlowChecker``) read nodes
    and materials, loaded before the first chunk, never flows. Once a row is rejected and the
    caller did not ask for the good rows only, nothing more is written: the caller raises
    ``_Rejected`` after the last chunk, and the rollback takes back the chunks already
    written.
    """
    tally = _Tally()
    batch: _Batch | None = None
    phase = "validating" if job.dry_run else "recording"
    rejected_rows: set[int] = set()
    header = list(run.table.header)
    rejected = rejected_path(settings.import_dir, _job_id(job))
    await _open_file_keys(session)
    rejected.parent.mkdir(parents=True, exist_ok=True)
    ahead = _ReadAhead(run.chunks())
    try:
        with rejected_csv(rejected) as handle:
            writer = csv.writer(handle)
            writer.writerow(["row", *header, "error"])
            while (chunk := await ahead.next()) is not None:
                fresh, repeats = await _screen(session, run, chunk)
                ahead.start()  # the next chunk is read while this one is written
                checked = chunk.checked
                tally.rows_total += len(chunk.cells)
                tally.rows_ignored += checked.ignored
                tally.rows_already_imported += repeats
                tally.to_record += len(fresh)
                tally.add_errors(checked.errors)
                rejected_rows |= checked.rejected_rows
                _write_rejected(writer, chunk.cells, checked.errors, header)
                if not job.dry_run and fresh and (job.good_rows_only or not tally.error_count):
                    batch = batch or await _Batch.reserve(session)
                    await _append(
                        session, run, job, batch, fresh, tally, tolerance=settings.tolerance
                    )
                progress(JobProgress(phase, tally.rows_total, run.table.rows))
    finally:
        await ahead.close()
    tally.rows_rejected = len(rejected_rows)
    if not tally.error_count:
        await asyncio.to_thread(rejected.unlink, missing_ok=True)
    if tally.rows_total == 0:
        raise ImportFileError(
            f"{run.table.name!r} has a header but no rows: there is nothing to import",
            field=("file",),
        )
    if tally.error_count and not job.good_rows_only:
        raise _Rejected(tally)
    if batch is not None:
        batch.insert(session, run, job, tally, caller)
        await session.flush()
        job.batch_id = batch.id
    return tally


def _job_id(job: ImportJob) -> int:
    assert job.id is not None
    return job.id


def _ledger_errors(errors: Sequence[MfaError], movements: Sequence[Movement]) -> list[RowError]:
    """The ledger's refusal of some rows (fields ``flows.<index>.<field>``), named by file
    row, the ledger's field and the movement's key."""
    out = []
    for e in errors:
        m = movements[int(e.field[1])]
        out.append(RowError(m.row, e.field[2] if len(e.field) > 2 else "", m.key, e.message))
    return out


@dataclass(slots=True)
class _Batch:
    """The id of an import's ``RecordBatch``, reserved before its first flow is written; its
    row goes in last (``insert``), once ``row_count`` is known, since ledger tables refuse
    UPDATE. The flows' and confirmations' references to it are checked at commit (their
    foreign keys are ``INITIALLY DEFERRED``, migration 0010): a batch row that never comes (a
    bug) fails the commit, and nothing is recorded."""

    id: int
    chunks: int = 0

    @classmethod
    async def reserve(cls, session: AsyncSession) -> _Batch:
        """SQLite: one more than the largest id, which the row will get, since the job holds
        the database's one write lock from here to its commit (as ``mfa.db.insert_rows``
        reasons). PostgreSQL: the next value of the table's sequence."""
        if session.get_bind().dialect.name == "postgresql":
            reserved = await session.execute(
                sa.text("SELECT nextval(pg_get_serial_sequence('record_batch', 'id'))")
            )
        else:
            await begin_writing(session)
            reserved = await session.execute(
                sa.text("SELECT coalesce(max(id), 0) + 1 FROM record_batch")
            )
        return cls(int(reserved.scalar_one()))

    def insert(
        self, session: AsyncSession, run: _FileRun, job: ImportJob, tally: _Tally, caller: Caller
    ) -> None:
        session.add(
            RecordBatch(
                id=self.id,
                kind=BatchKind.FILE,
                source=f"{run.profile.name}: {job.file_name}"[:500],
                content_hash=job.file_hash,
                row_count=tally.to_record,
                recorded_by=caller.subject,
            )
        )


async def _append(
    session: AsyncSession,
    run: _FileRun,
    job: ImportJob,
    batch: _Batch,
    fresh: Sequence[_Ready],
    tally: _Tally,
    *,
    tolerance: float,
) -> None:
    """Record one chunk's new movements under ``batch``, with their natural keys."""
    recorded = await append_checked(
        session, [flow for _, flow in fresh], batch_id=batch.id, tolerance=tolerance
    )
    movements = [m for m, _ in fresh]
    await _remember_movements(session, run.profile.system, _job_id(job), movements, recorded)
    linked = sum(1 for r in recorded if r.linked)
    tally.flows_linked += linked
    tally.flows_recorded += len(recorded) - linked
    batch.chunks += 1
    if batch.chunks & (batch.chunks - 1) == 0:  # after chunks 1, 2, 4, 8...
        await _refresh_statistics(session)


async def _remember_movements(
    session: AsyncSession,
    system: str,
    job_id: int,
    movements: Sequence[Movement],
    recorded: Sequence[Recorded],
) -> None:
    """Insert the chunk's natural keys into ``imported_movement``, in bulk as the ledger
    inserts its rows (``mfa.db.insert_rows``)."""
    await insert_rows(
        session,
        imported_movement_table,
        [
            {
                "reporting_party_id": m.entry.reporting_party_id,
                "system": system,
                "natural_key": m.key,
                "content_hash": m.content_hash,
                "flow_id": r.flow_id,
                "confirmation_id": r.confirmation_id,
                "job_id": job_id,
            }
            for m, r in zip(movements, recorded, strict=True)
        ],
    )


async def _refresh_statistics(session: AsyncSession) -> None:
    """On PostgreSQL, ``ANALYZE`` the tables the job writes, inside its transaction (which
    counts its own new rows). Without statistics the planner takes a fresh ledger for empty
    and scans every flow for each chunk's open transfers, so that an import's cost grows
    with the square of its size (docs/performance.md, "PostgreSQL without planner
    statistics"); analysing after chunks 1, 2, 4, 8... keeps them within 2× of the truth."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(sa.text("ANALYZE flow, flow_confirmation, imported_movement"))


def _finish(job: ImportJob, tally: _Tally, status: ImportStatus, message: str | None) -> None:
    job.status = status
    job.rows_total = tally.rows_total
    job.rows_rejected = tally.rows_rejected
    job.rows_ignored = tally.rows_ignored
    job.rows_already_imported = tally.rows_already_imported
    job.flows_recorded = tally.flows_recorded
    job.flows_linked = tally.flows_linked
    job.error_count = tally.error_count
    job.errors = tally.errors
    job.message = message[:2000] if message else None
    job.finished_at = utcnow()


def _summary(tally: _Tally, *, dry_run: bool) -> str:
    verb = "would record" if dry_run else "recorded"
    return (
        f"{tally.rows_total} rows: {verb} {tally.to_record}, "
        f"{tally.rows_already_imported} already imported, {tally.rows_ignored} ignored by the "
        f"profile, {tally.rows_rejected} rejected"
    )


async def run_job(
    factory: async_sessionmaker[AsyncSession],
    job_id: int,
    *,
    caller: Caller,
    settings: JobSettings,
    on_progress: ProgressCallback | None = None,
) -> ImportJob:
    """Run a ``PENDING`` job to ``VALIDATED`` (dry run), ``SUCCEEDED`` or ``FAILED``.

    Each phase owns its transaction: the job turns ``RUNNING`` in a short one; the import
    and the job's final state commit together; a failure rolls the import back and records
    why in a short one of its own. All of it runs under the job's lease
    (``mfa.imports.lease``), so a job left ``RUNNING`` by a process that died can be told
    from one still running.
    """
    async with lease.held(factory.kw["bind"], job_id):
        with _rare_collections():
            return await _run_leased(
                factory, job_id, caller=caller, settings=settings, on_progress=on_progress
            )


_JOB_GC_THRESHOLD = (100_000, 50, 100)
_jobs_running = 0
_gc_threshold_before: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def _rare_collections() -> Iterator[None]:
    """While jobs run in this process, Python's cyclic garbage collector runs after 100,000
    new container objects instead of 700 (``gc.set_threshold``), as before once the last
    job ends.

    A job makes and drops millions of short-lived rows, dicts and tuples, which reference
    counting frees; at the default thresholds the collector kept walking them and every
    long-lived object of the process: 1.4 s of the 4.6 s of CPU an import of 100,000 rows
    took, against 0.1 s at these (docs/performance.md).
    """
    global _jobs_running, _gc_threshold_before
    if _jobs_running == 0:
        _gc_threshold_before = gc.get_threshold()
        gc.set_threshold(*_JOB_GC_THRESHOLD)
    _jobs_running += 1
    try:
        yield
    finally:
        _jobs_running -= 1
        if _jobs_running == 0:
            gc.set_threshold(*_gc_threshold_before)


async def _run_leased(
    factory: async_sessionmaker[AsyncSession],
    job_id: int,
    *,
    caller: Caller,
    settings: JobSettings,
    on_progress: ProgressCallback | None,
) -> ImportJob:
    def progress(state: JobProgress) -> None:
        PROGRESS[job_id] = state
        if on_progress is not None:
            on_progress(state)

    async with transaction(factory) as session:
        job = await get_job(session, job_id, caller=caller)
        if job.status is not ImportStatus.PENDING:
            raise ImportJobError(
                f"import job {job_id} is {job.status.value}, not pending", field=("job",)
            )
        job.status = ImportStatus.RUNNING
    tally = _Tally()
    try:
        async with audited_transaction(factory, operation=f"import job {job_id}") as session:
            job = await get_job(session, job_id, caller=caller)
            profile = load_profile(job.profile, datasets=settings.datasets)
            if file_sha256(Path(job.stored_path))[0] != job.file_hash:
                raise ImportFileError(
                    f"{job.file_name!r} changed since it was submitted: submit it again",
                    field=("file",),
                )
            table = open_table(
                Path(job.stored_path),
                name=job.file_name,
                encoding=job.encoding,
                sheet=job.sheet,
                decimal=profile.decimal,
                max_bytes=settings.max_bytes,
                required=profile.required_columns,
            )
            missing = missing_columns(profile, table.header)
            if missing:
                raise ImportFileError(
                    f"{job.file_name!r} lacks the column(s) {', '.join(map(repr, missing))} "
                    f"that profile {profile.name} needs; its header is "
                    f"{', '.join(map(repr, table.header))}"
                    + (
                        f" (read with separator {table.separator!r}: is that the file's?)"
                        if len(table.header) == 1
                        else ""
                    ),
                    field=("columns",),
                )
            lookup = await _lookup(session, job.park_id, job.enterprise_id)
            flows = await flow_checker(
                session,
                caller=caller,
                node_ids={n.id for n in lookup.nodes.values()},
                material_ids={material_id for material_id, _ in lookup.materials.values()},
            )
            run = _FileRun(table, profile, lookup, flows, settings.chunk_rows)
            tally = await _import(
                session, run, job, caller=caller, settings=settings, progress=progress
            )
            status = ImportStatus.VALIDATED if job.dry_run else ImportStatus.SUCCEEDED
            _finish(job, tally, status, _summary(tally, dry_run=job.dry_run))
        return job
    except _Rejected as exc:
        return await _fail(
            factory,
            job_id,
            exc.tally,
            f"{exc.tally.rows_rejected} of {exc.tally.rows_total} rows rejected: nothing was "
            "recorded (import the good rows only, or correct the file)",
            caller=caller,
        )
    except MfaError as exc:
        return await _fail(factory, job_id, tally, exc.message, caller=caller)
    except IntegrityError:  # uq_imported_movement_key: a concurrent import won a movement
        return await _fail(
            factory,
            job_id,
            tally,
            "another import recorded some of these movements meanwhile: nothing was recorded; "
            "import the file again to record the rest",
            caller=caller,
        )
    finally:
        PROGRESS.pop(job_id, None)


async def _fail(
    factory: async_sessionmaker[AsyncSession],
    job_id: int,
    tally: _Tally,
    message: str,
    *,
    caller: Caller,
) -> ImportJob:
    tally.flows_recorded = tally.flows_linked = 0
    async with transaction(factory) as session:
        job = await get_job(session, job_id, caller=caller)
        job.batch_id = None
        _finish(job, tally, ImportStatus.FAILED, message)
    return job


async def prepare_commit(session: AsyncSession, job_id: int, *, caller: Caller) -> ImportJob:
    """Turn a finished dry run back into a pending job that records the same file."""
    job = await get_job(session, job_id, caller=caller)
    authorize(caller, Action.RECORD, park_id=job.park_id)
    if job.status is not ImportStatus.VALIDATED:
        raise ImportJobError(
            f"import job {job_id} is {job.status.value}: only a finished dry run "
            "(validated) can be committed",
            field=("job",),
        )
    job.dry_run = False
    job.status = ImportStatus.PENDING
    return job


async def park_ids(
    session: AsyncSession, park_code: str, enterprise_code: str | None
) -> tuple[int, int | None]:
    """``(park id, enterprise id)`` from their codes, for callers that speak codes (the CLI)."""
    park_id = (
        await session.execute(sa.select(Park.id).where(Park.code == park_code))  # type: ignore[call-overload]
    ).scalar()
    if park_id is None:
        raise NotFoundError(f"no park with code {park_code!r}", field=("park",))
    if enterprise_code is None:
        return park_id, None
    enterprise_id = (
        await session.execute(
            sa.select(node_table.c.id).where(
                node_table.c.park_id == park_id,
                node_table.c.code == enterprise_code,
                node_table.c.kind == NodeKind.ENTERPRISE.value,
            )
        )
    ).scalar()
    if enterprise_id is None:
        raise NotFoundError(
            f"no enterprise with code {enterprise_code!r} in park {park_code!r}",
            field=("enterprise",),
        )
    return park_id, enterprise_id
