"""Who is calling, and what they may do: the one place access control is decided.

Every domain read and write receives a ``Caller``. Writes and park-level reads call
``authorize``; row reads add ``flow_scope`` (ledger rows) or ``park_scope`` (the directory of
parks and nodes) to their WHERE clause, so a caller never even loads what it may not see.

The rules (operator: everything, every other role bound to one park):

================  ==========================  ==============================  ==============
role              READ                         RECORD                          ADMINISTER
================  ==========================  ==============================  ==============
park_admin        its park                     its park                        its park
auditor           its park                     no                              no
enterprise        flows it is a party to;      as itself (node_id = its id)    no
                  its own node-level analyses
partner           product footprints shared    no                              no
                  with it (``shares``)
================  ==========================  ==============================  ==============

``AUDIT`` (reading the audit trail) is READ of the park for park_admin and auditor only.
Every decision is noted on the current ``Trail`` (if one is open): refusals always, grants of
writes; ``mfa.audit`` stores them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa

from mfa.errors import PermissionDeniedError
from mfa.models._types import utcnow
from mfa.models.access import Role

__all__ = [
    "SYSTEM",
    "Action",
    "Caller",
    "Decision",
    "Role",
    "Trail",
    "authorize",
    "flow_scope",
    "may",
    "park_reader",
    "park_scope",
    "watching",
]


class Action(StrEnum):
    READ = "read"
    RECORD = "record"
    ADMINISTER = "administer"
    AUDIT = "audit"


WRITES = frozenset({Action.RECORD, Action.ADMINISTER})


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated identity behind a request, a CLI command or an import job.

    Its fields are its whole scope (a response cache may key on it): the role, the park and
    enterprise it is bound to, and for a partner the (enterprise id, material id) products
    shared with it.
    """

    subject: str
    role: Role
    park_id: int | None = None
    enterprise_id: int | None = None
    shares: frozenset[tuple[int, int]] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.subject.strip():
            raise ValueError("a caller needs a non-empty subject")
        if (self.role is Role.OPERATOR) != (self.park_id is None):
            raise ValueError("the operator has no park; every other role needs one")
        if (self.role is Role.ENTERPRISE) != (self.enterprise_id is not None):
            raise ValueError("an enterprise caller, and only one, names its enterprise")
        if self.shares and self.role is not Role.PARTNER:
            raise ValueError("only a partner has shared footprints")


SYSTEM = Caller(subject="system", role=Role.OPERATOR)


@dataclass(frozen=True, slots=True)
class Decision:
    """One access decision, as the audit trail stores it."""

    caller: Caller
    action: Action
    park_id: int | None
    node_id: int | None
    allowed: bool
    reason: str | None
    at: datetime


class Trail:
    """The decisions of one request or job that the audit trail has not stored yet."""

    def __init__(self, operation: str | None = None) -> None:
        self.operation = operation
        self.decisions: list[Decision] = []

    def take(self, *, allowed: bool) -> list[Decision]:
        """Remove and return the pending decisions that were (or were not) allowed."""
        taken = [d for d in self.decisions if d.allowed is allowed]
        self.decisions = [d for d in self.decisions if d.allowed is not allowed]
        return taken


_TRAIL: ContextVar[Trail | None] = ContextVar("mfa_access_trail", default=None)


@contextmanager
def watching(trail: Trail) -> Iterator[Trail]:
    """Note every decision taken inside the block (and in tasks it starts) on ``trail``."""
    token = _TRAIL.set(trail)
    try:
        yield trail
    finally:
        _TRAIL.reset(token)


def _refusal(
    caller: Caller, action: Action, park_id: int | None, node_id: int | None
) -> str | None:
    """Why ``caller`` may not ``action`` there, or None when it may."""
    role = caller.role
    if role is Role.OPERATOR:
        return None
    if park_id is None:
        if action is Action.READ:
            return None  # the catalogue; rows are filtered by flow_scope / park_scope
        return f"{action.value} across parks needs the operator role, not {role.value}"
    if park_id != caller.park_id:
        return f"{role.value} {caller.subject!r} has no access to park {park_id}"
    if role is Role.PARK_ADMIN:
        return None
    if role is Role.AUDITOR:
        if action in (Action.READ, Action.AUDIT):
            return None
        return f"an auditor reads and never writes: {action.value} refused"
    if role is Role.ENTERPRISE:
        if action in (Action.READ, Action.RECORD) and node_id == caller.enterprise_id:
            return None
        if node_id is None or action not in (Action.READ, Action.RECORD):
            return f"an enterprise may not {action.value} for the whole park"
        return (
            f"enterprise client {caller.subject!r} may {action.value} only in the name of its "
            f"own enterprise, not node {node_id}"
        )
    return f"a partner reads only the product footprints shared with it: {action.value} refused"


def may(
    caller: Caller, action: Action, *, park_id: int | None = None, node_id: int | None = None
) -> bool:
    """Whether ``caller`` may ``action`` there: ``authorize``'s rule, as a question that is
    not an attempt (nothing is noted on the audit trail)."""
    return _refusal(caller, action, park_id, node_id) is None


def authorize(
    caller: Caller, action: Action, *, park_id: int | None = None, node_id: int | None = None
) -> None:
    """Raise ``PermissionDeniedError`` unless ``caller`` may ``action`` on that park or node.

    ``park_id`` None means "not bound to a park": the catalogue for READ, cross-park
    administration otherwise. ``node_id`` names the enterprise in whose name a write is made
    (the reporting party) or whose books are read.
    """
    if not isinstance(caller, Caller):  # a programming error, never a user's
        raise PermissionDeniedError(f"{action.value} refused: no caller identity")
    reason = _refusal(caller, action, park_id, node_id)
    allowed = reason is None
    trail = _TRAIL.get()
    if trail is not None and (not allowed or action in WRITES):
        trail.decisions.append(
            Decision(caller, action, park_id, node_id, allowed, reason, at=utcnow())
        )
    if reason is not None:
        raise PermissionDeniedError(reason)


def flow_scope(
    caller: Caller,
    park_column: sa.ColumnElement[int],
    *,
    parties: tuple[sa.ColumnElement[int], ...] = (),
) -> sa.ColumnElement[bool]:
    """The SQL condition restricting ledger reads to what ``caller`` may see.

    ``parties`` are the node columns of the row's parties (a flow's source and target, a stock
    reading's enterprise): an enterprise sees the rows it is a party to. Without them (a
    park-wide aggregate) an enterprise or a partner sees nothing.
    """
    authorize(caller, Action.READ)
    if caller.role is Role.OPERATOR:
        return sa.true()
    if caller.role in (Role.PARK_ADMIN, Role.AUDITOR):
        return park_column == caller.park_id
    if caller.role is Role.ENTERPRISE and parties:
        return sa.and_(
            park_column == caller.park_id,
            sa.or_(*(column == caller.enterprise_id for column in parties)),
        )
    return sa.false()


def park_scope(caller: Caller, park_column: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    """The SQL condition restricting the directory (parks, their nodes) to the caller's park.

    Every role sees the names of its park's enterprises and boundary nodes: a transfer names
    its counterparty, a shared footprint its producer.
    """
    authorize(caller, Action.READ)
    if caller.role is Role.OPERATOR:
        return sa.true()
    return park_column == caller.park_id


def park_reader(caller: Caller, park_id: int) -> Caller:
    """A park-wide reader acting for ``caller``, for calculations whose published result the
    caller was authorized to see but whose inputs span other enterprises' books (a product's
    footprint needs its suppliers' flows). Authorize the result before using it."""
    return Caller(subject=caller.subject, role=Role.AUDITOR, park_id=park_id)
