"""The append-only ledger: flows, the counterparty's confirmations, stock readings, batches.

Rows in these tables are never updated or deleted (see ``mfa.models.guard``). A mistake is
corrected by a reversing flow that points to the original and carries the opposite quantity,
so every sum over the ledger stays right without rewriting history.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from mfa.models._types import UTC_TIMESTAMP, enum_column, utcnow


class BatchKind(StrEnum):
    """How a group of ledger rows entered the service."""

    API = "api"
    SAMPLE = "sample"
    FILE = "file"


class ConfirmationStatus(StrEnum):
    CONFIRMED = "confirmed"
    MISMATCHED = "mismatched"


def _batch_reference() -> sa.ForeignKey:
    """A flow's or confirmation's reference to its batch, checked at commit so that an
    import can write its flows before its batch row, whose count it knows only at the end
    (``mfa.imports.jobs._Batch``). Deferred from the start rather than by each import: on
    SQLite, ``PRAGMA defer_foreign_keys`` made every flow inserted after the first unmatched
    reference scan the tables referring to ``flow`` (docs/performance.md)."""
    return sa.ForeignKey("record_batch.id", deferrable=True, initially="DEFERRED")


class RecordBatch(SQLModel, table=True):
    """Provenance of rows recorded together: an API batch, the sample park, an imported file."""

    __tablename__ = "record_batch"
    __table_args__ = (
        sa.UniqueConstraint("idempotency_key", name="uq_record_batch_idempotency_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: BatchKind = Field(sa_type=enum_column(BatchKind))
    source: str | None = Field(default=None, max_length=500)
    idempotency_key: str | None = Field(default=None, max_length=200)
    content_hash: str | None = Field(
        default=None,
        max_length=64,
        description="SHA-256 of the batch's rows as submitted, when it has an idempotency key.",
    )
    row_count: int = 0
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTC_TIMESTAMP)


class Flow(SQLModel, table=True):
    """One ledger entry: ``quantity`` of ``material`` moved from ``source`` to ``target``.

    ``quantity`` is in the material's canonical unit (``unit``); what the reporter wrote is kept
    in ``reported_quantity`` / ``reported_unit``. A reversal (``reverses_id`` set) carries the
    negated quantity of the entry it cancels; any other entry is non-negative. Periods are
    inclusive dates. ``park_id`` repeats the park of both ends so that park-wide reads and the
    park's ledger version need no join.
    """

    __tablename__ = "flow"
    __table_args__ = (
        sa.CheckConstraint("source_id <> target_id", name="ck_flow_distinct_ends"),
        sa.CheckConstraint("period_end >= period_start", name="ck_flow_period"),
        sa.CheckConstraint(
            "(reverses_id IS NULL AND quantity >= 0) "
            "OR (reverses_id IS NOT NULL AND quantity <= 0)",
            name="ck_flow_sign",
        ),
        sa.UniqueConstraint("reverses_id", name="uq_flow_reverses_id"),
        sa.Index("ix_flow_park_id_id", "park_id", "id"),
        # A source's books by period, and the transfer key the ledger links reports on.
        sa.Index(
            "ix_flow_transfer_key",
            "source_id",
            "period_start",
            "target_id",
            "material_id",
            "period_end",
        ),
        sa.Index("ix_flow_target_period", "target_id", "period_start"),
    )

    id: int | None = Field(default=None, primary_key=True)
    park_id: int = Field(foreign_key="park.id")
    source_id: int = Field(foreign_key="park_node.id")
    target_id: int = Field(foreign_key="park_node.id")
    material_id: int = Field(foreign_key="material.id", index=True)
    quantity: float
    unit: str = Field(max_length=8)
    reported_quantity: str = Field(max_length=40)
    reported_unit: str = Field(max_length=32)
    period_start: date
    period_end: date
    reporting_party_id: int = Field(foreign_key="park_node.id")
    evidence: str | None = Field(default=None, max_length=200)
    relative_uncertainty: float | None = Field(default=None, ge=0)
    reverses_id: int | None = Field(default=None, foreign_key="flow.id")
    reason: str | None = Field(default=None, max_length=500)
    batch_id: int | None = Field(default=None, sa_column_args=[_batch_reference()], index=True)
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTC_TIMESTAMP)
    value: float | None = Field(
        default=None, description="Invoiced value of the whole flow, in ``currency``."
    )
    currency: str | None = Field(default=None, max_length=3, description="ISO 4217 code.")


class FlowConfirmation(SQLModel, table=True):
    """The other side's report of a transfer between two enterprises.

    It is evidence, not a second flow: sums over the ledger count the transfer once, with the
    quantity of the first report. ``relative_difference`` = |q_flow − q_here| / max(q_flow,
    q_here), and ``status`` compares it with the tolerance in force when it was recorded.
    The newest confirmation of a flow is the one in force.
    """

    __tablename__ = "flow_confirmation"

    id: int | None = Field(default=None, primary_key=True)
    flow_id: int = Field(foreign_key="flow.id", index=True)
    reporting_party_id: int = Field(foreign_key="park_node.id")
    quantity: float = Field(ge=0)
    reported_quantity: str = Field(max_length=40)
    reported_unit: str = Field(max_length=32)
    evidence: str | None = Field(default=None, max_length=200)
    status: ConfirmationStatus = Field(sa_type=enum_column(ConfirmationStatus))
    relative_difference: float
    tolerance: float
    batch_id: int | None = Field(default=None, sa_column_args=[_batch_reference()], index=True)
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTC_TIMESTAMP)


class StockReading(SQLModel, table=True):
    """The stock of a material held by an enterprise at the end of ``on_date``.

    Readings are appended, never edited: for one (enterprise, material, date) the newest
    recorded reading is the one in force.
    """

    __tablename__ = "stock_reading"
    __table_args__ = (
        sa.Index("ix_stock_reading_lookup", "enterprise_id", "material_id", "on_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="park_node.id")
    material_id: int = Field(foreign_key="material.id")
    on_date: date
    quantity: float = Field(ge=0)
    unit: str = Field(max_length=8)
    reported_quantity: str = Field(max_length=40)
    reported_unit: str = Field(max_length=32)
    evidence: str | None = Field(default=None, max_length=200)
    batch_id: int | None = Field(default=None, foreign_key="record_batch.id")
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTC_TIMESTAMP)


LEDGER_TABLES: tuple[str, ...] = ("flow", "flow_confirmation", "stock_reading")
"""Tables whose rows are never updated or deleted once written."""
