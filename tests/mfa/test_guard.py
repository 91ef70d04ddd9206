"""Append-only below the API: the ORM guard and the database triggers both refuse changes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from factories import make_world
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from mfa.access import Caller
from mfa.db import session_factory
from mfa.errors import LedgerImmutableError
from mfa.ledger import record_flow
from mfa.models import AuditEvent, Flow, Park, Role

flows = Flow.__table__  # type: ignore[attr-defined]
events = AuditEvent.__table__  # type: ignore[attr-defined]


async def _one_flow(engine: AsyncEngine, caller: Caller) -> int:
    async with session_factory(engine)() as session, session.begin():
        world = await make_world(session, caller)
        recorded = await record_flow(
            session, world.flow("supplier", "mill", "steel-coil", "10", "t"), caller=caller
        )
        return recorded.flow_id


async def test_orm_guard_refuses_to_flush_a_changed_flow(
    engine: AsyncEngine, caller: Caller
) -> None:
    flow_id = await _one_flow(engine, caller)
    async with session_factory(engine)() as session:
        flow = await session.get(Flow, flow_id)
        assert flow is not None
        flow.quantity = 1.0
        with pytest.raises(LedgerImmutableError):
            await session.flush()


async def test_orm_guard_refuses_to_delete_a_flow(engine: AsyncEngine, caller: Caller) -> None:
    flow_id = await _one_flow(engine, caller)
    async with session_factory(engine)() as session:
        flow = await session.get(Flow, flow_id)
        await session.delete(flow)
        with pytest.raises(LedgerImmutableError):
            await session.flush()


async def test_orm_guard_lets_master_data_change(session: AsyncSession, caller: Caller) -> None:
    world = await make_world(session, caller)
    park = await session.get(Park, world.park)
    assert park is not None
    park.description = "renamed"
    await session.flush()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE flow SET quantity = 1 WHERE id = :id",
        "DELETE FROM flow WHERE id = :id",
    ],
)
async def test_database_refuses_raw_sql_update_and_delete(
    engine: AsyncEngine, caller: Caller, statement: str
) -> None:
    flow_id = await _one_flow(engine, caller)
    async with engine.connect() as connection:
        with pytest.raises(DBAPIError, match="append-only"):
            await connection.execute(sa.text(statement), {"id": flow_id})
        await connection.rollback()
        quantity = (
            await connection.execute(sa.select(flows.c.quantity).where(flows.c.id == flow_id))
        ).scalar_one()
    assert quantity == 10_000.0


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_event SET allowed = true WHERE id = :id", "DELETE FROM audit_event"],
)
async def test_the_audit_trail_refuses_raw_sql_update_and_delete(
    engine: AsyncEngine, statement: str
) -> None:
    async with session_factory(engine)() as session, session.begin():
        session.add(
            AuditEvent(subject="intruder", role=Role.AUDITOR, action="record", allowed=False)
        )
    async with engine.connect() as connection:
        event_id = (await connection.execute(sa.select(events.c.id))).scalar_one()
        with pytest.raises(DBAPIError, match="append-only"):
            await connection.execute(sa.text(statement), {"id": event_id})
        await connection.rollback()
        allowed = (await connection.execute(sa.select(events.c.allowed))).scalars().all()
    assert allowed == [False]


async def test_orm_guard_refuses_to_change_an_audit_event(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        event = AuditEvent(subject="intruder", role=Role.AUDITOR, action="record", allowed=False)
        session.add(event)
        await session.flush()
        event.allowed = True
        with pytest.raises(LedgerImmutableError, match="audit_event"):
            await session.flush()
