"""The tables. Importing this package registers every table, and the append-only guard, on
``SQLModel.metadata``."""

from sqlmodel import SQLModel

from mfa.models import guard
from mfa.models.ledger import (
    LEDGER_TABLES,
    BatchKind,
    ConfirmationStatus,
    Flow,
    FlowConfirmation,
    RecordBatch,
    StockReading,
)
from mfa.models.material import Material, MaterialKind
from mfa.models.park import NodeKind, Park, ParkNode
from mfa.models.recycling import RecyclingParameters

guard.install(SQLModel.metadata)
metadata = SQLModel.metadata

__all__ = [
    "LEDGER_TABLES",
    "BatchKind",
    "ConfirmationStatus",
    "Flow",
    "FlowConfirmation",
    "Material",
    "MaterialKind",
    "NodeKind",
    "Park",
    "ParkNode",
    "RecordBatch",
    "RecyclingParameters",
    "StockReading",
    "metadata",
]
