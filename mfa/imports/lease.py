"""Who runs an import job: a lock that ends with the process holding it.

A job turns ``RUNNING`` only while its runner holds the job's lease, and the runner lets the
lease go only after the job's final status has committed. So a ``RUNNING`` job whose lease
anyone can take has lost its runner (the process was killed, the machine stopped), and
``sweep`` marks it ``FAILED``; its batch never committed, so the ledger is as before. No
clocks and no heartbeats: the lock is dropped by whoever sees the death first-hand.

* **PostgreSQL**: a session-level advisory lock on a connection of its own. The server drops
  it when that connection ends, so it holds across workers and machines.
* **SQLite**: ``flock`` on a file beside the database file. The kernel drops it when the
  process ends; SQLite is one machine's database, so every process that can open the
  database sees the lock.
* **In-memory SQLite**: the database dies with its one process, and its jobs with it: no
  lease is taken and no job is ever found orphaned.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mfa.db import transaction
from mfa.imports.errors import ImportJobError
from mfa.models import ImportJob, ImportStatus
from mfa.models._types import utcnow

log = logging.getLogger("mfa.imports")

INTERRUPTED = (
    "interrupted: the process running this import stopped before it finished; nothing was "
    "recorded (a batch is recorded whole or not at all): submit the file again"
)
_NAMESPACE = 0x4D464149  # "MFAI": the first key of the two-key advisory lock
_TRY_LOCK = sa.text("SELECT pg_try_advisory_lock(:namespace, :job)")
_UNLOCK = sa.text("SELECT pg_advisory_unlock(:namespace, :job)")


def _lock_file(engine: AsyncEngine, job_id: int) -> Path | None:
    """The SQLite lock file of a job, or None for an in-memory database."""
    database = engine.url.database
    if database in (None, "", ":memory:"):
        return None
    return Path(f"{database}.import-{job_id}.lock")


@asynccontextmanager
async def _attempt(engine: AsyncEngine, job_id: int) -> AsyncIterator[bool]:
    """Try the job's lease for the block; yields whether it was free (and is now ours)."""
    if engine.dialect.name == "postgresql":
        async with _advisory(engine, job_id) as taken:
            yield taken
        return
    path = _lock_file(engine, job_id)
    if path is None:
        yield True
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            # Unlinked while still locked: whoever opened this file before and takes the
            # lock after us re-reads the job's status, which is final by then.
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)


@asynccontextmanager
async def _advisory(engine: AsyncEngine, job_id: int) -> AsyncIterator[bool]:
    keys = {"namespace": _NAMESPACE, "job": job_id}
    async with engine.connect() as connection:
        taken = bool((await connection.execute(_TRY_LOCK, keys)).scalar_one())
        await connection.commit()  # hold the lock, not a transaction
        try:
            yield taken
        finally:
            if taken:
                try:
                    await connection.execute(_UNLOCK, keys)
                    await connection.commit()
                except DBAPIError:  # the connection is gone, and the lock with it
                    log.warning("import job %s: lease connection lost", job_id)


@asynccontextmanager
async def held(engine: AsyncEngine, job_id: int) -> AsyncIterator[None]:
    """Hold the job's lease for the block, or refuse when another process holds it."""
    async with _attempt(engine, job_id) as taken:
        if not taken:
            raise ImportJobError(
                f"import job {job_id} is being run by another process", field=("job",)
            )
        yield


async def settle(factory: async_sessionmaker[AsyncSession], job_id: int) -> bool:
    """Fail the job if it is ``RUNNING`` with nobody holding its lease; True if it was.

    The status is read again under the lease: the runner commits the final status before it
    lets the lease go, so ``RUNNING`` seen while holding the lease means no runner is left.
    An in-memory database's job always has its runner (the process itself).
    """
    engine = factory.kw["bind"]
    if engine.dialect.name == "sqlite" and _lock_file(engine, job_id) is None:
        return False
    async with _attempt(engine, job_id) as taken:
        if not taken:
            return False
        async with transaction(factory) as session:
            job = await session.get(ImportJob, job_id, with_for_update=True)
            if job is None or job.status is not ImportStatus.RUNNING:
                return False
            job.status = ImportStatus.FAILED
            job.message = INTERRUPTED
            job.finished_at = utcnow()
    log.warning("import job %s had lost its runner: marked failed", job_id)
    return True


async def sweep(factory: async_sessionmaker[AsyncSession]) -> list[int]:
    """Fail every ``RUNNING`` job that has lost its runner; the ids of those failed.

    Run when a server starts: a job of a process that died stays ``RUNNING`` until someone
    looks, and ``importJob`` also settles the job it is asked about.
    """
    job_table = ImportJob.__table__  # type: ignore[attr-defined]
    async with factory() as session:
        candidates = list(
            (
                await session.execute(
                    sa.select(job_table.c.id).where(
                        job_table.c.status == ImportStatus.RUNNING.value
                    )
                )
            ).scalars()
        )
    return [job_id for job_id in candidates if await settle(factory, job_id)]
