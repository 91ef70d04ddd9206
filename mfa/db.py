"""Engines and sessions. One database URL in settings; the sync and async drivers derive from it.

``sqlite:///var/mfa.db`` and ``postgresql://user@host/db`` are what users write; the service
talks to them through aiosqlite / asyncpg on the request path and through the standard sync
drivers (sqlite3 / psycopg) for migrations and the CLI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

import mfa.models  # noqa: F401  (registers the tables and the ledger guard)

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def _backend(url: str | URL) -> str:
    backend = make_url(url).get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return backend


def async_url(url: str | URL) -> URL:
    return make_url(url).set(drivername=_ASYNC_DRIVERS[_backend(url)])


def sync_url(url: str | URL) -> URL:
    return make_url(url).set(drivername=_SYNC_DRIVERS[_backend(url)])


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Foreign keys are off by default in SQLite; WAL lets readers run beside the one writer.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _ensure_sqlite_directory(url: URL) -> None:
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str | URL, *, echo: bool = False) -> sa.Engine:
    """A sync engine (migrations, CLI, benchmarks' baselines)."""
    target = sync_url(url)
    _ensure_sqlite_directory(target)
    engine = sa.create_engine(target, echo=echo)
    if target.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def create_async(url: str | URL, *, echo: bool = False) -> AsyncEngine:
    """The async engine of the request path."""
    target = async_url(url)
    _ensure_sqlite_directory(target)
    engine = create_async_engine(target, echo=echo)
    if target.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


_SQLITE_EMPTY_WRITE = sa.text("UPDATE park SET code = code WHERE 0")


async def begin_writing(session: AsyncSession) -> None:
    """On SQLite, begin the transaction and take the database's one write lock now.

    The driver (pysqlite, under aiosqlite) sends ``BEGIN`` only before a statement that
    changes data, so until then a session's reads run outside any transaction. An empty write
    makes it begin: every read that follows sees what other writers committed and no other
    writer can commit before this one. PostgreSQL needs nothing: its transaction began with
    the session's first statement.
    """
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(_SQLITE_EMPTY_WRITE)


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """``session.begin_nested()`` that stays inside the caller's transaction on SQLite too.

    A ``SAVEPOINT`` sent before SQLite's transaction has begun is itself the outermost
    transaction, and releasing it commits, whatever the caller then decides. Beginning the
    transaction first (``begin_writing``) keeps the savepoint nested, as on PostgreSQL.
    """
    await begin_writing(session)
    async with session.begin_nested():
        yield


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success and rolls back on any exception.

    Domain functions never commit: whoever opens this (a request, a CLI command, an import
    job) owns the transaction.
    """
    async with factory() as session, session.begin():
        yield session
