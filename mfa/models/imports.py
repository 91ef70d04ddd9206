"""Import jobs (a file of ERP stock movements on its way into the ledger) and the natural keys
of the movements already imported.

``import_job`` is a work record, not ledger: its status and counters change while the job
runs. ``imported_movement`` is written in the same transaction as the flows it points to and
never changed; its unique key is what makes a repeated or overlapping import record no
movement twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from mfa.models._types import UTC_TIMESTAMP, enum_column, utcnow


class ImportStatus(StrEnum):
    """Where a job stands. ``VALIDATED`` is a finished dry run, waiting for ``importCommit``."""

    PENDING = "pending"
    RUNNING = "running"
    VALIDATED = "validated"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ImportJob(SQLModel, table=True):
    """One file submitted for import, with its provenance and what became of its rows.

    ``errors`` keeps the first rejected cells (row, column, value, reason) as JSON;
    ``error_count`` counts them all.
    """

    __tablename__ = "import_job"
    __table_args__ = (sa.UniqueConstraint("idempotency_key", name="uq_import_job_idempotency_key"),)

    id: int | None = Field(default=None, primary_key=True)
    park_id: int = Field(foreign_key="park.id", index=True)
    enterprise_id: int | None = Field(default=None, foreign_key="park_node.id")
    profile: str = Field(max_length=64)
    file_name: str = Field(max_length=255)
    file_hash: str = Field(max_length=64, description="SHA-256 of the file's bytes.")
    file_size: int
    stored_path: str = Field(max_length=1000)
    encoding: str | None = Field(default=None, max_length=32)
    sheet: str | None = Field(default=None, max_length=100)
    idempotency_key: str | None = Field(default=None, max_length=200)
    dry_run: bool = False
    good_rows_only: bool = False
    status: ImportStatus = Field(sa_type=enum_column(ImportStatus))
    rows_total: int = 0
    rows_rejected: int = 0
    rows_ignored: int = Field(default=0, description="Movements the profile leaves out.")
    rows_already_imported: int = 0
    flows_recorded: int = 0
    flows_linked: int = Field(default=0, description="Rows that confirmed existing transfers.")
    error_count: int = 0
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    message: str | None = Field(default=None, max_length=2000)
    batch_id: int | None = Field(default=None, foreign_key="record_batch.id")
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTC_TIMESTAMP)
    finished_at: datetime | None = Field(default=None, sa_type=UTC_TIMESTAMP)


class ImportedMovement(SQLModel, table=True):
    """The natural key of a movement an import recorded, e.g. SAP ``4900012345/2025/0001``.

    Keys are scoped by the reporting enterprise and the ERP (``system``): two enterprises'
    SAP systems number their documents independently. ``content_hash`` (of the mapped row)
    tells a true repeat from a movement whose figures changed since it was imported.
    """

    __tablename__ = "imported_movement"
    __table_args__ = (
        sa.UniqueConstraint(
            "reporting_party_id", "system", "natural_key", name="uq_imported_movement_key"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    reporting_party_id: int = Field(foreign_key="park_node.id")
    system: str = Field(max_length=32)
    natural_key: str = Field(max_length=200)
    content_hash: str = Field(max_length=16)
    flow_id: int = Field(foreign_key="flow.id")
    confirmation_id: int | None = Field(default=None, foreign_key="flow_confirmation.id")
    job_id: int = Field(foreign_key="import_job.id", index=True)
