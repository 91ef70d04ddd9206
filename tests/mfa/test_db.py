"""Transactions: work done under a savepoint commits or rolls back with its transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from mfa.access import Caller
from mfa.db import insert_rows, session_factory
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


def _parks(*codes: str, country: str = "VN") -> list[dict[str, object]]:
    now = datetime.now(UTC)
    return [
        {"code": code, "name": f"Park {code}", "country": country, "created_at": now}
        for code in codes
    ]


async def test_insert_rows_returns_each_row_s_id_in_the_order_of_the_rows(
    engine: AsyncEngine,
) -> None:
    async with session_factory(engine)() as session, session.begin():
        first = await insert_rows(session, parks, _parks("b", "a", "c"))
        second = await insert_rows(session, parks, _parks("d"))
    async with session_factory(engine)() as session:
        stored = {r.id: r.code for r in await session.execute(sa.select(parks.c.id, parks.c.code))}
    assert [stored[i] for i in first] == ["b", "a", "c"]
    assert first == sorted(first)
    assert [stored[i] for i in second] == ["d"]
    assert second[0] > max(first)


async def test_insert_rows_refuses_a_duplicate_key_as_an_integrity_error_and_keeps_nothing(
    engine: AsyncEngine,
) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        async with session_factory(engine)() as session, session.begin():
            await insert_rows(session, parks, _parks("x", "y", "x"))
    async with session_factory(engine)() as session:
        assert (await session.execute(sa.select(sa.func.count()).select_from(parks))).scalar() == 0


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
async def test_insert_rows_refuses_a_text_longer_than_its_column_on_postgresql(
    engine: AsyncEngine,
) -> None:
    """PostgreSQL's COPY checks each value against its column's type (``varchar(2)``) and
    refuses, never cuts. (SQLite does not enforce lengths.)"""
    with pytest.raises(sa.exc.DataError, match="too long"):
        async with session_factory(engine)() as session, session.begin():
            await insert_rows(session, parks, _parks("z", country="VNM"))
