"""Check the flows' and confirmations' references to their batch at commit.

An import writes its flows chunk by chunk as it reads the file and inserts the batch row
last, once its row count is known (ledger rows refuse UPDATE), so these two checks must wait
for its commit (``mfa.imports.jobs._Batch``). They are ``INITIALLY DEFERRED`` rather than
deferred by the import's transaction: SQLite has no ``SET CONSTRAINTS``, and its
``PRAGMA defer_foreign_keys`` made every later parent insert scan its child tables.

PostgreSQL alters the constraints in place, without rewriting or scanning the tables. SQLite
stores the clause only as text: it is rewritten in the schema by the procedure SQLite
documents for changing a foreign key without copying the table ("Making Other Kinds Of Table
Schema Changes", https://www.sqlite.org/lang_altertable.html), so that the schema matches the
models' and the tables keep their rows and triggers.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 17:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("flow", "flow_confirmation")
_DEFERRABLE = "DEFERRABLE INITIALLY DEFERRED"
_CLAUSE = "FOREIGN KEY(batch_id) REFERENCES record_batch (id)"


def _postgresql(timing: str) -> None:
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} ALTER CONSTRAINT {table}_batch_id_fkey {timing}")


def _sqlite(*, deferrable: bool) -> None:
    """Make the clause in each table's stored definition deferrable or not. Online, refuse a
    definition that does not hold it once, in the other state (a schema this revision does
    not know), and bump the schema version so that open connections read the new one; an
    offline (--sql) script has no version to read: connections open while it runs keep the
    old clause (checked at once) until they reconnect."""
    old, new = _CLAUSE, f"{_CLAUSE} {_DEFERRABLE}"
    if not deferrable:
        old, new = new, old
    context = op.get_context()
    online = not context.as_sql
    if online:
        bind = op.get_bind()
        for table in _TABLES:
            sql = bind.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
                {"name": table},
            ).scalar_one()
            if sql.count(_CLAUSE) != 1 or sql.count(_DEFERRABLE) != (0 if deferrable else 1):
                raise RuntimeError(f"unexpected definition of {table}: {sql}")
        version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar_one())
    op.execute("PRAGMA writable_schema = ON")
    for table in _TABLES:
        op.execute(
            f"UPDATE sqlite_master SET sql = replace(sql, '{old}', '{new}') "
            f"WHERE type = 'table' AND name = '{table}'"
        )
    if online:
        op.execute(f"PRAGMA schema_version = {version + 1}")
    op.execute("PRAGMA writable_schema = OFF")
    if online:
        problems = op.get_bind().exec_driver_sql("PRAGMA integrity_check").scalars().all()
        if problems != ["ok"]:
            raise RuntimeError(f"integrity check after rewriting the schema: {problems}")


def _is_postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    if _is_postgresql():
        _postgresql(_DEFERRABLE)
    else:
        _sqlite(deferrable=True)


def downgrade() -> None:
    if _is_postgresql():
        _postgresql("NOT DEFERRABLE")
    else:
        _sqlite(deferrable=False)
