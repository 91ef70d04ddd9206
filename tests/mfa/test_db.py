"""Transactions: work done under a savepoint commits or rolls back with its transaction."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from mfa.access import Caller
from mfa.db import session_factory
from mfa.models import Park
from mfa.registry import ParkCreate, create_park

parks = Park.__table__  # type: ignore[attr-defined]


class Abort(Exception):
    pass


async def test_a_park_created_in_a_failed_transaction_is_not_kept(
    engine: AsyncEngine, caller: Caller
) -> None:
    """``create_park`` inserts under a savepoint to turn a duplicate code into an error; on
    SQLite a savepoint opened before the transaction began used to commit on release."""

    async def create_then_fail() -> None:
        async with session_factory(engine)() as session, session.begin():
            await create_park(
                session, ParkCreate(code="p1", name="P1", country="VN"), caller=caller
            )
            raise Abort

    with pytest.raises(Abort):
        await create_then_fail()
    async with session_factory(engine)() as session:
        assert (await session.execute(sa.select(sa.func.count()).select_from(parks))).scalar() == 0


async def test_a_park_created_in_a_committed_transaction_is_kept(
    engine: AsyncEngine, caller: Caller
) -> None:
    async with session_factory(engine)() as session, session.begin():
        await create_park(session, ParkCreate(code="p1", name="P1", country="VN"), caller=caller)
    async with session_factory(engine)() as session:
        codes = (await session.execute(sa.select(parks.c.code))).scalars().all()
    assert codes == ["p1"]
