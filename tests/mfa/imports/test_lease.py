"""The lease of an import job: one runner at a time, and a job whose runner is gone is failed
instead of staying ``RUNNING`` for ever.

The killed-process case (a real runner dying mid-import) is in ``test_jobs.py``; here the
runner is simulated in this process, which the lease cannot tell from another process
(a second connection on PostgreSQL, a second open file on SQLite).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from factories import make_world
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mfa.access import SYSTEM, Caller
from mfa.db import create_async, session_factory, transaction
from mfa.imports import lease
from mfa.imports.errors import ImportJobError
from mfa.imports.jobs import ImportRequest, JobSettings, create_job, run_job
from mfa.models import ImportJob, ImportStatus
from mfa.settings import REPOSITORY_DATASETS


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest.fixture
def settings(tmp_path: Path) -> JobSettings:
    return JobSettings(
        datasets=REPOSITORY_DATASETS, import_dir=tmp_path / "imports", max_bytes=2**20
    )


async def _job(
    factory: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    caller: Caller,
    settings: JobSettings,
    status: ImportStatus,
) -> int:
    """A job of a one-row file, put in ``status`` as a runner would have left it."""
    path = tmp_path / "moves.csv"
    path.write_text(
        "external_id,movement,enterprise,partner,material,quantity,unit,date\n"
        "A-1,receipt,mill,supplier,steel-coil,2,t,2025-01-06\n"
    )
    async with transaction(factory) as session:
        world = await make_world(session, SYSTEM)
        request = ImportRequest(
            park_id=world.park, profile="generic", path=path, file_name=path.name
        )
        job = await create_job(session, request, caller=caller, settings=settings)
        job.status = status
    assert job.id is not None
    return job.id


async def _status(factory: async_sessionmaker[AsyncSession], job_id: int) -> ImportJob:
    async with factory() as session:
        job = await session.get(ImportJob, job_id)
        assert job is not None
        return job


async def test_a_job_s_lease_has_one_holder_at_a_time(engine: AsyncEngine) -> None:
    async with lease.held(engine, 7):
        with pytest.raises(ImportJobError, match="import job 7 is being run by another"):
            async with lease.held(engine, 7):
                pass
        async with lease.held(engine, 8):  # another job's lease is its own
            pass
    async with lease.held(engine, 7):  # given up at the end of the block
        pass


async def test_a_running_job_nobody_holds_is_failed_as_interrupted(
    factory: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    caller: Caller,
    settings: JobSettings,
) -> None:
    job_id = await _job(factory, tmp_path, caller, settings, ImportStatus.RUNNING)
    assert await lease.sweep(factory) == [job_id]
    job = await _status(factory, job_id)
    assert (job.status, job.message) == (ImportStatus.FAILED, lease.INTERRUPTED)
    async with factory() as session:
        flows = (await session.execute(sa.text("SELECT count(*) FROM flow"))).scalar_one()
    assert flows == 0


async def test_a_running_job_whose_runner_holds_the_lease_is_left_alone(
    engine: AsyncEngine,
    factory: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    caller: Caller,
    settings: JobSettings,
) -> None:
    job_id = await _job(factory, tmp_path, caller, settings, ImportStatus.RUNNING)
    async with lease.held(engine, job_id):
        assert await lease.sweep(factory) == []
        assert not await lease.settle(factory, job_id)
    assert (await _status(factory, job_id)).status is ImportStatus.RUNNING


@pytest.mark.parametrize("status", [ImportStatus.PENDING, ImportStatus.VALIDATED])
async def test_only_running_jobs_are_settled(
    factory: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    caller: Caller,
    settings: JobSettings,
    status: ImportStatus,
) -> None:
    job_id = await _job(factory, tmp_path, caller, settings, status)
    assert not await lease.settle(factory, job_id)
    assert (await _status(factory, job_id)).status is status


async def test_a_job_another_process_runs_is_not_run_twice(
    engine: AsyncEngine,
    factory: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    caller: Caller,
    settings: JobSettings,
) -> None:
    job_id = await _job(factory, tmp_path, caller, settings, ImportStatus.PENDING)
    async with lease.held(engine, job_id):
        with pytest.raises(ImportJobError, match="being run by another process"):
            await run_job(factory, job_id, caller=caller, settings=settings)
    assert (await _status(factory, job_id)).status is ImportStatus.PENDING
    job = await run_job(factory, job_id, caller=caller, settings=settings)
    assert job.status is ImportStatus.SUCCEEDED, job.message
