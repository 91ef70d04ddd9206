"""Append-only enforcement below the API: database triggers and an ORM guard.

The triggers stop any client, including ``psql`` and raw SQL from this code base, from
updating or deleting ledger rows and the audit trail (``APPEND_ONLY_TABLES``); the ORM guard
fails earlier, with a domain error, when application code marks such an object dirty or
deleted.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction

from mfa.errors import LedgerImmutableError
from mfa.models.ledger import LEDGER_TABLES

APPEND_ONLY_TABLES: tuple[str, ...] = (*LEDGER_TABLES, "audit_event")

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION mfa_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'raise_exception',
        MESSAGE = 'ledger table ' || TG_TABLE_NAME || ' is append-only: ' || TG_OP
            || ' refused; record a reversing entry instead';
END;
$$ LANGUAGE plpgsql
"""


def append_only_ddl(dialect: str, tables: tuple[str, ...]) -> list[str]:
    """The statements that make ``tables`` refuse UPDATE, DELETE (and TRUNCATE)."""
    statements: list[str] = []
    if dialect == "postgresql":
        statements.append(_PG_FUNCTION)
        for table in tables:
            statements.append(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION mfa_ledger_append_only()"
            )
            statements.append(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION mfa_ledger_append_only()"
            )
    elif dialect == "sqlite":
        for table in tables:
            for op in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'ledger table {table} is append-only: {op} "
                    "refused; record a reversing entry instead'); END"
                )
    else:
        raise ValueError(f"no append-only triggers for dialect {dialect!r}")
    return statements


def drop_append_only_ddl(dialect: str, tables: tuple[str, ...], *, function: bool) -> list[str]:
    """Undo ``append_only_ddl`` (for ``alembic downgrade``); the PostgreSQL trigger function
    too with ``function``, once no table uses it."""
    statements: list[str] = []
    for table in tables:
        if dialect == "postgresql":
            statements.append(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            statements.append(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        else:
            statements.append(f"DROP TRIGGER IF EXISTS {table}_no_update")
            statements.append(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if dialect == "postgresql" and function:
        statements.append("DROP FUNCTION IF EXISTS mfa_ledger_append_only()")
    return statements


def _create_triggers(target: sa.MetaData, connection: sa.Connection, **_: Any) -> None:
    for statement in append_only_ddl(connection.dialect.name, APPEND_ONLY_TABLES):
        connection.execute(sa.DDL(statement))  # type: ignore[no-untyped-call]


def _refuse_ledger_changes(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    for obj in (*session.dirty, *session.deleted):
        table = getattr(obj, "__tablename__", None)
        if table in APPEND_ONLY_TABLES and (obj in session.deleted or session.is_modified(obj)):
            raise LedgerImmutableError(
                f"{table} rows are append-only: record a reversing entry instead of "
                "changing or deleting one"
            )


def install(metadata: sa.MetaData) -> None:
    """Attach the triggers to ``metadata.create_all`` and the guard to every ORM session."""
    if not event.contains(metadata, "after_create", _create_triggers):
        event.listen(metadata, "after_create", _create_triggers)
    if not event.contains(Session, "before_flush", _refuse_ledger_changes):
        event.listen(Session, "before_flush", _refuse_ledger_changes)
