"""Import jobs over the API: a multipart ``POST /imports`` to submit a file, GraphQL
``importJob(id)`` to follow it, ``importCommit`` to record a finished dry run.

Files travel over plain multipart HTTP, not GraphQL multipart (STYLE: the GraphQL endpoint
takes JSON only). A job runs off the request, in a task of the server's event loop with its
own transactions (``mfa.imports.jobs.run_job``); its progress is read from this process.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

import strawberry
from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.types import Info

from mfa.access import Caller
from mfa.api.context import Context
from mfa.api.errors import UserError, user_errors
from mfa.api.ids import pk_of, to_global_id
from mfa.api.types import Connection, Flow, Node, PageInfo, RecordBatch
from mfa.audit import audited_transaction
from mfa.errors import MfaError, NotFoundError
from mfa.imports import jobs, lease
from mfa.models import ImportJob as ImportJobRow
from mfa.models import ImportStatus
from mfa.reads import FlowFilter
from mfa.settings import Settings

log = logging.getLogger("mfa.imports")
_RUNNING: set[asyncio.Task[object]] = set()
_UPLOAD_BLOCK = 1 << 20

ImportStatusType = strawberry.enum(ImportStatus, description="Where an import job stands.")


def start_job(
    factory: async_sessionmaker[AsyncSession],
    job_id: int,
    *,
    caller: Caller,
    settings: jobs.JobSettings,
) -> None:
    """Run the job in a task of this event loop; its outcome is recorded on the job."""

    async def work() -> object:
        try:
            return await jobs.run_job(factory, job_id, caller=caller, settings=settings)
        except Exception:  # recorded nowhere else: a background task has no caller to tell
            log.exception("import job %s failed unexpectedly", job_id)
            raise

    task: asyncio.Task[object] = asyncio.get_running_loop().create_task(work())
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


@strawberry.type(description="A refused cell: the file's row (header = 1), column and value.")
class ImportRowError:
    row: int
    column: str
    value: str
    reason: str


@strawberry.type(description="How far a running job has come.")
class ImportProgress:
    phase: str = strawberry.field(
        description="validating (a dry run) or recording (each chunk as soon as it is checked)."
    )
    rows_done: int
    rows_total: int | None = strawberry.field(
        description="The file's rows where its format records them (Parquet); null for CSV "
        "and xlsx, which are read once and counted as they are read (rowsDone)."
    )


@strawberry.type(description="A file of stock movements submitted for import, and its outcome.")
class ImportJob(Node):
    id: strawberry.ID
    status: ImportStatusType  # type: ignore[valid-type]
    profile: str
    file_name: str
    file_hash: str = strawberry.field(description="SHA-256 of the file.")
    file_size: int
    dry_run: bool
    good_rows_only: bool
    message: str | None
    rows_total: int
    rows_rejected: int
    rows_ignored: int = strawberry.field(description="Movements the profile leaves out.")
    rows_already_imported: int = strawberry.field(
        description="Movements an earlier import recorded (same natural key and figures)."
    )
    flows_recorded: int
    flows_linked: int = strawberry.field(description="Rows that confirmed existing transfers.")
    error_count: int
    errors: list[ImportRowError] = strawberry.field(description="The first 1000 refused cells.")
    rejected_rows_url: str | None = strawberry.field(
        description="CSV of the rejected rows with an error column, when some were rejected."
    )
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    pk: strawberry.Private[int]
    batch_pk: strawberry.Private[int | None]

    @staticmethod
    def from_row(row: ImportJobRow) -> ImportJob:
        assert row.id is not None
        return ImportJob(
            id=strawberry.ID(to_global_id("ImportJob", row.id)),
            status=row.status,
            profile=row.profile,
            file_name=row.file_name,
            file_hash=row.file_hash,
            file_size=row.file_size,
            dry_run=row.dry_run,
            good_rows_only=row.good_rows_only,
            message=row.message,
            rows_total=row.rows_total,
            rows_rejected=row.rows_rejected,
            rows_ignored=row.rows_ignored,
            rows_already_imported=row.rows_already_imported,
            flows_recorded=row.flows_recorded,
            flows_linked=row.flows_linked,
            error_count=row.error_count,
            errors=[ImportRowError(**e) for e in row.errors or []],
            rejected_rows_url=(
                f"/imports/{to_global_id('ImportJob', row.id)}/rejected"
                if row.error_count
                else None
            ),
            created_by=row.created_by,
            created_at=row.created_at,
            finished_at=row.finished_at,
            pk=row.id,
            batch_pk=row.batch_id,
        )

    @strawberry.field(description="Progress while the job runs; null otherwise.")
    def progress(self) -> ImportProgress | None:
        state = jobs.PROGRESS.get(self.pk)
        if state is None:
            return None
        return ImportProgress(
            phase=state.phase, rows_done=state.rows_done, rows_total=state.rows_total
        )

    @strawberry.field(description="The ledger batch the job recorded, if it recorded any.")
    async def batch(self, info: Info[Context, None]) -> RecordBatch | None:
        if self.batch_pk is None:
            return None
        row = await info.context.batches.load(self.batch_pk)
        return None if row is None else RecordBatch.from_row(row)

    @strawberry.field(description="The flows the job recorded (not the confirmations).")
    async def flows(
        self, info: Info[Context, None], first: int = 50, after: str | None = None
    ) -> Connection[Flow]:
        from mfa.api.pages import flow_connection, page_size

        if self.batch_pk is None:
            page_size(info, first)
            empty = PageInfo(
                has_next_page=False, has_previous_page=False, start_cursor=None, end_cursor=None
            )
            return Connection(edges=[], nodes=[], page_info=empty, total_count=0)
        return await flow_connection(
            info, FlowFilter(batch_id=self.batch_pk), first=first, after=after
        )


async def import_job_node(info: Info[Context, None], pk: int) -> ImportJob | None:
    """The job with this primary key, or None when there is none.

    A job ``RUNNING`` in no task of this process may have lost its runner: it is settled
    (``mfa.imports.lease``) before it is answered, so nobody waits on a dead job.
    """
    try:
        async with info.context.read() as session:
            row = await jobs.get_job(session, pk, caller=info.context.caller)
        orphan = row.status is ImportStatus.RUNNING and pk not in jobs.PROGRESS
        if orphan and await lease.settle(info.context.factory, pk):
            async with info.context.read() as session:
                row = await jobs.get_job(session, pk, caller=info.context.caller)
    except NotFoundError:
        return None
    return ImportJob.from_row(row)


@strawberry.type
class ImportQuery:
    @strawberry.field(description="An import job, by the id POST /imports returned.")
    async def import_job(self, info: Info[Context, None], id: strawberry.ID) -> ImportJob | None:
        return await import_job_node(info, pk_of(id, "ImportJob", field="id"))


@strawberry.input(description="Record the file of a finished dry run.")
class ImportCommitInput:
    job: strawberry.ID


@strawberry.type
class ImportCommitPayload:
    job: ImportJob | None = strawberry.field(description="Pending: follow it with importJob.")
    user_errors: list[UserError]


@strawberry.type
class ImportMutation:
    @strawberry.mutation(description="Record what a dry run validated; runs as a new job run.")
    async def import_commit(
        self, info: Info[Context, None], input: ImportCommitInput
    ) -> ImportCommitPayload:
        ctx = info.context
        try:
            pk = pk_of(input.job, "ImportJob", field="job")
            async with ctx.write() as session:
                row = await jobs.prepare_commit(session, pk, caller=ctx.caller)
        except MfaError as exc:
            return ImportCommitPayload(job=None, user_errors=user_errors(exc))
        start_job(ctx.factory, pk, caller=ctx.caller, settings=jobs.JobSettings.of(ctx.settings))
        return ImportCommitPayload(job=ImportJob.from_row(row), user_errors=[])


def _refusal(error: MfaError, status: int = 422) -> JSONResponse:
    body = {"errors": [{"field": list(error.field), "message": error.message, "code": error.code}]}
    return JSONResponse(body, status_code=status)


async def _store(upload: UploadFile, directory: Path, max_bytes: int) -> Path:
    """Stream the upload to ``directory``; refuse it past ``max_bytes`` without keeping it."""
    suffix = Path(upload.filename or "").suffix.lower()[:10]
    target = directory / f"{uuid.uuid4().hex}{suffix}"
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    size = 0
    with target.open("wb") as handle:
        while block := await upload.read(_UPLOAD_BLOCK):
            size += len(block)
            if size > max_bytes:
                break
            handle.write(block)
    if size > max_bytes:
        target.unlink()
        raise MfaError(
            f"the file is larger than the limit of {max_bytes / 2**20:,.0f} MiB "
            "(MFA_IMPORT_MAX_BYTES): split the export by period",
            field=("file",),
        )
    return target


def imports_router(
    *,
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    caller_for: Callable[[Request], Awaitable[Caller]],
) -> APIRouter:
    """``POST /imports`` and ``GET /imports/{id}/rejected``; ``caller_for`` authenticates."""
    router = APIRouter(prefix="/imports", tags=["imports"])
    config = jobs.JobSettings.of(settings)

    @router.post("", status_code=202)
    async def submit(
        request: Request,
        file: UploadFile,
        profile: str = Form(),
        park: str = Form(description="Global id of the park."),
        enterprise: str | None = Form(None, description="Global id of the enterprise."),
        dry_run: bool = Form(False),
        good_rows_only: bool = Form(False),
        encoding: str | None = Form(None),
        sheet: str | None = Form(None),
        idempotency_key: str | None = Form(None),
    ) -> JSONResponse:
        """Submit a file; 202 with the job's id, then follow it with GraphQL ``importJob``."""
        caller = await caller_for(request)
        try:
            park_id = pk_of(park, "Park", field="park")
            enterprise_id = (
                pk_of(enterprise, "Enterprise", field="enterprise") if enterprise else None
            )
            stored = await _store(file, settings.import_dir / "uploads", settings.import_max_bytes)
        except MfaError as exc:
            return _refusal(exc, 413 if exc.field == ("file",) else 422)
        request_ = jobs.ImportRequest(
            park_id=park_id,
            enterprise_id=enterprise_id,
            profile=profile,
            path=stored,
            file_name=file.filename or stored.name,
            dry_run=dry_run,
            good_rows_only=good_rows_only,
            encoding=encoding,
            sheet=sheet,
            idempotency_key=idempotency_key,
        )
        try:
            async with audited_transaction(factory, operation="POST /imports") as session:
                job = await jobs.create_job(session, request_, caller=caller, settings=config)
        except MfaError as exc:
            await asyncio.to_thread(stored.unlink)
            return _refusal(exc, 404 if isinstance(exc, NotFoundError) else 422)
        assert job.id is not None
        if job.stored_path != str(stored):  # a repeat of an earlier submission
            await asyncio.to_thread(stored.unlink)
        elif job.status is ImportStatus.PENDING:
            start_job(factory, job.id, caller=caller, settings=config)
        return JSONResponse(
            {"id": to_global_id("ImportJob", job.id), "status": job.status.value},
            status_code=202,
        )

    @router.get("/{job}/rejected", response_model=None)
    async def rejected(request: Request, job: str) -> FileResponse | JSONResponse:
        """The rejected rows of a job as CSV, with the file's row number and an error column."""
        caller = await caller_for(request)
        try:
            job_id = pk_of(job, "ImportJob", field="job")
            async with factory() as session:
                await jobs.get_job(session, job_id, caller=caller)
        except MfaError as exc:
            return _refusal(exc, 404)
        path = jobs.rejected_path(settings.import_dir, job_id)
        if not await asyncio.to_thread(path.is_file):
            return _refusal(NotFoundError(f"import job {job_id} rejected no rows"), 404)
        return FileResponse(path, media_type="text/csv", filename=f"import-{job_id}-rejected.csv")

    return router
