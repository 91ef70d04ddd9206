"""Column helpers shared by the tables: enums stored as text, timestamps in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa


def enum_column(enum: type[StrEnum]) -> sa.Enum:
    """Store a ``str`` enum as its value in a VARCHAR: no PostgreSQL enum types to migrate."""
    return sa.Enum(
        enum,
        native_enum=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


UTC_TIMESTAMP = sa.DateTime(timezone=True)
