"""The tables. Importing this package registers every table, and the append-only guard, on
``SQLModel.metadata``."""

from sqlmodel import SQLModel

from mfa.models import guard, version
from mfa.models.access import ApiClient, AuditEvent, FootprintShare, Role
from mfa.models.imports import ImportedMovement, ImportJob, ImportStatus
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
from mfa.models.scenarios import Scenario, ScenarioChange, ScenarioChangeKind
from mfa.models.version import ParkVersion

guard.install(SQLModel.metadata)
version.install(SQLModel.metadata)
metadata = SQLModel.metadata

__all__ = [
    "LEDGER_TABLES",
    "ApiClient",
    "AuditEvent",
    "BatchKind",
    "ConfirmationStatus",
    "Flow",
    "FlowConfirmation",
    "FootprintShare",
    "ImportJob",
    "ImportStatus",
    "ImportedMovement",
    "Material",
    "MaterialKind",
    "NodeKind",
    "Park",
    "ParkNode",
    "ParkVersion",
    "RecordBatch",
    "RecyclingParameters",
    "Role",
    "Scenario",
    "ScenarioChange",
    "ScenarioChangeKind",
    "StockReading",
    "metadata",
]
