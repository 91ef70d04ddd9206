"""Park versions: which writes advance which park's version, for every table of the schema."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from factories import make_world
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from mfa.access import Caller
from mfa.ledger import StockCreate, record_flow, record_stocks
from mfa.models import MaterialKind, metadata
from mfa.models.version import CATALOGUE, UNVERSIONED, park_expression, trigger_names
from mfa.registry import MaterialCreate, create_material
from mfa.units import Dimension


async def _versions(session: AsyncSession) -> dict[int, int]:
    rows = await session.execute(sa.text("SELECT park_id, version FROM park_version"))
    return {park: version for park, version in rows}


async def test_a_write_advances_its_park_and_leaves_the_others(
    session: AsyncSession, caller: Caller
) -> None:
    first = await make_world(session, caller)
    second = await make_world(session, caller, "other")
    before = await _versions(session)

    await record_flow(
        session, first.flow("supplier", "mill", "steel-coil", "1", "t"), caller=caller
    )
    after_flow = await _versions(session)
    await record_stocks(
        session,
        [
            StockCreate(
                first.nodes["mill"], first.materials["steel-coil"], date(2025, 1, 31), "2", "t"
            )
        ],
        caller=caller,
    )
    after_stock = await _versions(session)

    assert after_flow[first.park] > before[first.park]
    assert after_stock[first.park] > after_flow[first.park]  # via the enterprise's park
    assert after_stock[second.park] == before[second.park]
    assert after_stock[CATALOGUE] == before[CATALOGUE]


async def test_a_catalogue_write_advances_the_catalogue_only(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    before = await _versions(session)

    await create_material(
        session,
        MaterialCreate(
            code="glass", name="Glass", kind=MaterialKind.PRODUCT, dimension=Dimension.MASS
        ),
        caller=caller,
    )

    after = await _versions(session)
    assert after[CATALOGUE] == before[CATALOGUE] + 1
    assert after[world.park] == before[world.park]


async def test_every_table_but_the_unversioned_carries_the_triggers(engine: AsyncEngine) -> None:
    query = {
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger'",
        "postgresql": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal",
    }[engine.dialect.name]
    async with engine.connect() as connection:
        present = set((await connection.execute(sa.text(query))).scalars())

    for table in metadata.tables.values():
        names = set(trigger_names(table.name))
        if table.name in UNVERSIONED:
            assert not names & present, table.name
        else:
            assert names <= present, table.name


def test_rows_are_placed_by_park_column_then_flow_then_node() -> None:
    tables = metadata.tables
    assert park_expression(tables["park"], "r") == "r.id"
    assert park_expression(tables["flow"], "r") == "r.park_id"
    assert "FROM flow p WHERE p.id = r.flow_id" in park_expression(tables["flow_confirmation"], "r")
    assert "FROM park_node p WHERE p.id = r.enterprise_id" in park_expression(
        tables["stock_reading"], "r"
    )
    assert park_expression(tables["material"], "r") == "NULL"  # the catalogue
