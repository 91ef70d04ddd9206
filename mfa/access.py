"""Who is calling, and what they may do: the one place access control is decided.

Every domain read and write receives a ``Caller``. Today every caller may do everything; the
access-control issue changes ``authorize`` and ``flow_scope`` here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from mfa.errors import PermissionDeniedError


class Action(StrEnum):
    READ = "read"
    RECORD = "record"
    ADMINISTER = "administer"


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated identity behind a request, a CLI command or an import job."""

    subject: str

    def __post_init__(self) -> None:
        if not self.subject.strip():
            raise ValueError("a caller needs a non-empty subject")


SYSTEM = Caller(subject="system")


def authorize(
    caller: Caller, action: Action, *, park_id: int | None = None, node_id: int | None = None
) -> None:
    """Raise ``PermissionDeniedError`` unless ``caller`` may ``action`` on that park or node."""
    if not isinstance(caller, Caller):  # a programming error, never a user's
        raise PermissionDeniedError(f"{action.value} refused: no caller identity")


def flow_scope(caller: Caller, park_column: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    """The SQL condition restricting ledger reads to what ``caller`` may see."""
    authorize(caller, Action.READ)
    return sa.true()
