"""The audit trail: who did what, when; every committed write and every refused attempt.

``mfa.access.authorize`` notes its decisions on the open ``Trail``. A write's grants are stored
in the write's own transaction, just before it commits, so a write that rolls back leaves no
grant behind; refusals are stored by ``store_refusals`` in a transaction of their own, so they
survive the rollback of the request that was refused. The ledger rows carry their recorder
(``recorded_by``) as well.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mfa.access import Action, Caller, Decision, Trail, authorize, watching
from mfa.models import AuditEvent, Role
from mfa.reads import Page

_event_t = AuditEvent.__table__  # type: ignore[attr-defined]


async def store(
    session: AsyncSession, decisions: Sequence[Decision], operation: str | None
) -> None:
    """Insert one audit event per distinct decision (a batch authorizes a park once per row)."""
    seen: set[tuple[object, ...]] = set()
    rows = []
    for d in decisions:
        key = (d.caller, d.action, d.park_id, d.node_id, d.allowed, d.reason)
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            {
                "at": d.at,
                "subject": d.caller.subject,
                "role": d.caller.role.value,
                "action": d.action.value,
                "operation": operation[:200] if operation else None,
                "park_id": d.park_id,
                "node_id": d.node_id,
                "allowed": d.allowed,
                "reason": d.reason[:500] if d.reason else None,
            }
        )
    if rows:
        await session.execute(sa.insert(_event_t), rows)


@asynccontextmanager
async def audited(
    factory: async_sessionmaker[AsyncSession], trail: Trail
) -> AsyncIterator[AsyncSession]:
    """A transaction that commits the block's work together with the grants it was given.

    Grants of a block that fails are dropped (nothing was written); its refusals stay on the
    trail for ``store_refusals``."""
    try:
        async with factory() as session, session.begin():
            yield session
            await store(session, trail.take(allowed=True), trail.operation)
    except BaseException:
        trail.take(allowed=True)
        raise


async def store_refusals(factory: async_sessionmaker[AsyncSession], trail: Trail) -> None:
    """Store the trail's pending refusals in a transaction of their own."""
    refused = trail.take(allowed=False)
    if refused:
        async with factory() as session, session.begin():
            await store(session, refused, trail.operation)


@asynccontextmanager
async def audited_transaction(
    factory: async_sessionmaker[AsyncSession], *, operation: str
) -> AsyncIterator[AsyncSession]:
    """``mfa.db.transaction`` for writes outside a GraphQL request (an HTTP upload, a job, the
    CLI): the block's grants are stored with its work, its refusals after it, whatever the
    outcome."""
    trail = Trail(operation)
    try:
        with watching(trail):
            async with audited(factory, trail) as session:
                yield session
    finally:
        await store_refusals(factory, trail)


@dataclass(frozen=True, slots=True)
class AuditEventRow:
    id: int
    at: datetime
    subject: str
    role: Role
    action: Action
    operation: str | None
    park_id: int | None
    node_id: int | None
    allowed: bool
    reason: str | None


async def event_page(
    session: AsyncSession,
    *,
    caller: Caller,
    park_id: int | None,
    first: int,
    after_id: int | None = None,
    subject: str | None = None,
    refused_only: bool = False,
) -> Page[AuditEventRow]:
    """The park's audit events, oldest first (keyset pages by id). Auditors, the park's
    administrators and the operator may read them; all parks' (``park_id`` None, including
    events bound to no park) only the operator."""
    authorize(caller, Action.AUDIT, park_id=park_id)
    conditions: list[sa.ColumnElement[bool]] = []
    if park_id is not None:
        conditions.append(_event_t.c.park_id == park_id)
    if subject is not None:
        conditions.append(_event_t.c.subject == subject)
    if refused_only:
        conditions.append(_event_t.c.allowed.is_(False))
    page_conditions = list(conditions)
    if after_id is not None:
        page_conditions.append(_event_t.c.id > after_id)
    rows = (
        (
            await session.execute(
                sa.select(_event_t).where(*page_conditions).order_by(_event_t.c.id).limit(first + 1)
            )
        )
        .mappings()
        .all()
    )
    total = (
        await session.execute(sa.select(sa.func.count()).select_from(_event_t).where(*conditions))
    ).scalar_one()
    items = [
        AuditEventRow(
            **{**m, "role": Role(m["role"]), "action": Action(m["action"])},
        )
        for m in rows[:first]
    ]
    return Page(items, int(total), len(rows) > first, after_id is not None)
