"""Engines and sessions. One database URL in settings; the sync and async drivers derive from it.

``sqlite:///var/mfa.db`` and ``postgresql://user@host/db`` are what users write; the service
talks to them through aiosqlite / asyncpg on the request path and through the standard sync
drivers (sqlite3 / psycopg) for migrations and the CLI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any

import asyncpg
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


async def insert_rows(
    session: AsyncSession, table: sa.Table, rows: list[dict[str, Any]]
) -> list[int]:
    """Insert ``rows`` (all with the same keys) in bulk; their new ids, in the order of
    ``rows``. Every constraint and trigger of the table applies as to any INSERT. The rows
    name every column to write: the model's Python-side defaults are not applied to the
    others on PostgreSQL, whose own column defaults are.

    PostgreSQL: the ids are drawn from the table's sequence first, in one statement, and
    the rows sent with them by binary ``COPY`` (``_copy_rows``). SQLite: SQLAlchemy's
    multi-row INSERTs with RETURNING (a plain ``executemany`` was measured slower: each of
    its one-row statements with the version trigger costs more than a row of a multi-row
    statement); it cannot tie the returned ids to the rows, so they are sorted instead,
    which is sound because the writer holds SQLite's single write lock and an INTEGER
    PRIMARY KEY (without AUTOINCREMENT) takes one more than the largest rowid: the ids
    ascend in the order the rows are inserted. (The ledger's tables also refuse DELETE, so
    no freed id is reused between them.)
    """
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return await _copy_rows(session, table, rows)
    result = await session.execute(sa.insert(table).returning(table.c.id), rows)
    return sorted(result.scalars().all())


# The sequence is looked up once (MATERIALIZED), not once per id: 3 ms for 10,000 ids,
# against 30 ms when the planner folds the look-up into each row.
_RESERVE_IDS = sa.text(
    "WITH s AS MATERIALIZED (SELECT CAST(pg_get_serial_sequence(:table, 'id') AS regclass) "
    "AS id) SELECT array_agg(nextval(s.id)) FROM s, generate_series(1, :n)"
)


async def _copy_rows(
    session: AsyncSession, table: sa.Table, rows: list[dict[str, Any]]
) -> list[int]:
    """PostgreSQL: ids from the table's sequence, then ``COPY table (id, …) FROM STDIN`` in
    asyncpg's binary format, in the session's transaction.

    COPY streams: the server inserts while the client still encodes, and the statement-level
    triggers fire once. Against one ``INSERT … SELECT … FROM unnest(<an array per column>)
    RETURNING id``, the form it replaces, 10,000 flows took 0.25 s instead of 0.31–0.37 s,
    most of the difference the driver's per-element checks of the arrays
    (docs/performance.md). The binary format checks each value against its column's type,
    so a text longer than a ``varchar(n)`` is refused, never cut. The driver's errors are
    raised as SQLAlchemy's, as a statement's would be.
    """
    reserved = await session.execute(_RESERVE_IDS, {"table": table.name, "n": len(rows)})
    ids = sorted(reserved.scalar_one())  # one array: no row per id to decode
    dialect = session.get_bind().dialect
    columns = [c for c in table.columns if c.name in rows[0]]
    cells = itemgetter(*(c.name for c in columns))
    processors = [
        (i, process)
        for i, c in enumerate(columns)
        if (process := c.type.bind_processor(dialect)) is not None
    ]
    records: list[tuple[Any, ...]] = []
    for id_, row in zip(ids, rows, strict=True):
        values = list(cells(row)) if len(columns) > 1 else [cells(row)]
        for i, process in processors:
            values[i] = process(values[i])
        records.append((id_, *values))
    connection = await (await session.connection()).get_raw_connection()
    driver = connection.driver_connection
    assert driver is not None
    assert driver.is_in_transaction()  # begun by the reservation
    statement = f"COPY {table.name}"
    try:
        await driver.copy_records_to_table(
            table.name, records=records, columns=["id", *(c.name for c in columns)]
        )
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise sa.exc.IntegrityError(statement, None, exc) from exc
    except asyncpg.DataError as exc:
        raise sa.exc.DataError(statement, None, exc) from exc
    return ids
