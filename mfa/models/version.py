"""Park versions: a counter per park that every write touching the park advances.

The response cache (``mfa.api.cache``) keys a result on the versions of the parks it reads, so
a cached result can never outlive a change to its data: after any write the key is different.

**What counts as a write.** Any INSERT, UPDATE or DELETE, by any client (the service, the CLI,
an import job, ``psql``), on any table of the schema except those in ``UNVERSIONED``. The bump
is done by database triggers derived from the schema, not by application code, so a writer
cannot forget it. Each written row is attributed to a park by the first rule that applies:

1. the ``park`` table itself: the row's ``id``;
2. a ``park_id`` column: its value;
3. a foreign key to ``flow``: that flow's park (confirmations, per-flow parameters);
4. a foreign key to ``park_node``: that node's park (stock readings, anything per enterprise);
5. otherwise, or when the rule yields NULL, the **catalogue** (row ``CATALOGUE`` = 0): tables
   shared by every park (materials, recycling parameters of a material, accounts...).

Every cache key includes the catalogue's version, so a write to a shared table invalidates
every cached result; a write in one park leaves other parks' results valid. A table added
later is covered by the same rules as soon as its migration calls ``version_trigger_ddl`` (a
test checks that every table of the models carries the triggers).

A park without a row has version 0; the first write creates the row at 1. On PostgreSQL the
triggers run once per statement (transition tables), so a 10,000-row insert bumps each park
once; concurrent writers to one park queue on its version row until the first commits. On
SQLite they run once per row (SQLite has no statement triggers), which is cheap there.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import Field, SQLModel

CATALOGUE = 0
"""The version row of everything that belongs to no park: part of every cache key."""

UNVERSIONED: dict[str, str] = {
    "park_version": "the versions themselves",
    "alembic_version": "the migration bookkeeping",
    "record_batch": "provenance written in the transaction of the flows, confirmations or stock "
    "readings it recorded, whose rows advance their parks; never read on its own but by id, "
    "and lookups by id key on every park",
}
"""Tables whose writes advance no version, and why that is safe."""

_EVENTS = ("insert", "update", "delete")


class ParkVersion(SQLModel, table=True):
    """The version of one park (``park_id``) or of the catalogue (``park_id`` = 0).

    No foreign key to ``park``: the catalogue row has no park, and a deleted park's row must
    stay so that a result cached for it can never match again.
    """

    __tablename__ = "park_version"

    park_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    version: int = Field(default=0, sa_type=sa.BigInteger)


def park_expression(table: sa.Table, row: str) -> str:
    """SQL giving the park of a row of ``table`` aliased as ``row``, per the module's rules."""
    if table.name == "park":
        return f"{row}.id"
    if "park_id" in table.c:
        return f"{row}.park_id"
    for parent in ("flow", "park_node"):
        for key in sorted(table.foreign_keys, key=lambda k: k.parent.name):
            if key.column.table.name == parent and key.column.name == "id":
                column = key.parent.name
                return f"(SELECT p.park_id FROM {parent} p WHERE p.id = {row}.{column})"
    return "NULL"


def versioned_tables(tables: Any) -> list[sa.Table]:
    return sorted((t for t in tables if t.name not in UNVERSIONED), key=lambda t: t.name)


def trigger_names(table: str) -> list[str]:
    return [f"{table}_version_{verb}" for verb in _EVENTS]


_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION mfa_park_version_bump() RETURNS trigger AS $$
DECLARE
    changed text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT * FROM new_rows'
        WHEN 'DELETE' THEN 'SELECT * FROM old_rows'
        ELSE 'SELECT * FROM new_rows UNION ALL SELECT * FROM old_rows' END;
BEGIN
    EXECUTE 'INSERT INTO park_version (park_id, version) '
        || 'SELECT DISTINCT COALESCE(' || TG_ARGV[0] || ', 0), 1 FROM (' || changed || ') r '
        || 'ON CONFLICT (park_id) DO UPDATE SET version = park_version.version + 1';
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def version_trigger_ddl(table: sa.Table, dialect: str) -> list[str]:
    """The triggers that advance the version of the parks a write to ``table`` touches."""
    if dialect == "postgresql":
        expression = park_expression(table, "r").replace("'", "''")
        referencing = {
            "insert": "NEW TABLE AS new_rows",
            "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
            "delete": "OLD TABLE AS old_rows",
        }
        return [
            f"CREATE TRIGGER {name} AFTER {verb.upper()} ON {table.name} "
            f"REFERENCING {referencing[verb]} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION mfa_park_version_bump('{expression}')"
            for verb, name in zip(_EVENTS, trigger_names(table.name), strict=True)
        ]
    if dialect == "sqlite":
        statements = []
        for verb, name in zip(_EVENTS, trigger_names(table.name), strict=True):
            rows = {"insert": ("NEW",), "update": ("NEW", "OLD"), "delete": ("OLD",)}[verb]
            parks = " UNION ".join(
                f"SELECT COALESCE({park_expression(table, r)}, 0) AS park" for r in rows
            )
            statements.append(
                f"CREATE TRIGGER {name} AFTER {verb.upper()} ON {table.name} BEGIN "
                f"INSERT INTO park_version (park_id, version) SELECT park, 1 FROM ({parks}) "
                "WHERE true ON CONFLICT (park_id) DO UPDATE SET version = version + 1; END"
            )
        return statements
    raise ValueError(f"no park-version triggers for dialect {dialect!r}")


def install_ddl(tables: Any, dialect: str) -> list[str]:
    """The function (PostgreSQL) and every versioned table's triggers."""
    statements = [_PG_FUNCTION] if dialect == "postgresql" else []
    for table in versioned_tables(tables):
        statements += version_trigger_ddl(table, dialect)
    return statements


def drop_ddl(table_names: Any, dialect: str) -> list[str]:
    """Undo ``install_ddl`` for tables of these names (for ``alembic downgrade``)."""
    statements = []
    for table in sorted(table_names):
        for name in trigger_names(table):
            on = f" ON {table}" if dialect == "postgresql" else ""
            statements.append(f"DROP TRIGGER IF EXISTS {name}{on}")
    if dialect == "postgresql":
        statements.append("DROP FUNCTION IF EXISTS mfa_park_version_bump()")
    return statements


def _create_triggers(target: sa.MetaData, connection: sa.Connection, **_: Any) -> None:
    tables = [t for t in target.sorted_tables if t.name in _existing(connection)]
    for statement in install_ddl(tables, connection.dialect.name):
        connection.execute(sa.DDL(statement))  # type: ignore[no-untyped-call]


def _existing(connection: sa.Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


def install(metadata: sa.MetaData) -> None:
    """Attach the version triggers to ``metadata.create_all``."""
    if not event.contains(metadata, "after_create", _create_triggers):
        event.listen(metadata, "after_create", _create_triggers)
