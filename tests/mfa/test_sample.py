"""The sample park, loaded through the ledger, shows exactly the features planted in it.

planted.json is written by the generator; the service must find each planted feature and no
other: mismatched and unconfirmed transfers, unbalanced enterprise-months.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mfa.access import SYSTEM
from mfa.balance import mass_balance
from mfa.db import create_async, session_factory

SAMPLE = Path(__file__).resolve().parents[2] / "datasets" / "sample_park"
PLANTED = json.loads((SAMPLE / "planted.json").read_text())
MONTHS = [date(2025, m, 1) for m in range(1, 13)]

TRANSFERS = sa.text(
    """
    SELECT src.code AS source, tgt.code AS target, mat.code AS material, f.period_start,
           (SELECT c.status FROM flow_confirmation c WHERE c.flow_id = f.id
            ORDER BY c.id DESC LIMIT 1) AS status
    FROM flow f
    JOIN park_node src ON src.id = f.source_id
    JOIN park_node tgt ON tgt.id = f.target_id
    JOIN material mat ON mat.id = f.material_id
    WHERE src.kind = 'enterprise' AND tgt.kind = 'enterprise'
    """
)


@pytest.fixture
async def sample_session(sample_database_url: str) -> AsyncIterator[AsyncSession]:
    engine = create_async(sample_database_url)
    async with session_factory(engine)() as session:
        yield session
    await engine.dispose()


def _keys(items: list[dict[str, str]]) -> set[tuple[str, str, str, str]]:
    return {(i["source"], i["target"], i["material"], i["period_start"]) for i in items}


async def _transfers_with(session: AsyncSession, status: str | None) -> set[tuple[str, ...]]:
    rows = (await session.execute(TRANSFERS)).mappings()
    return {
        (r["source"], r["target"], r["material"], str(r["period_start"]))
        for r in rows
        if r["status"] == status
    }


async def test_mismatched_transfers_are_exactly_the_planted_ones(
    sample_session: AsyncSession,
) -> None:
    found = await _transfers_with(sample_session, "mismatched")
    assert found == _keys(PLANTED["mismatched_transfers"])


async def test_unconfirmed_transfers_are_exactly_the_planted_ones(
    sample_session: AsyncSession,
) -> None:
    found = await _transfers_with(sample_session, None)
    assert found == _keys(PLANTED["unconfirmed_transfers"])


async def test_unbalanced_enterprise_months_are_exactly_the_planted_ones(
    sample_session: AsyncSession,
) -> None:
    enterprises = (
        await sample_session.execute(
            sa.text("SELECT id, code FROM park_node WHERE kind = 'enterprise' ORDER BY code")
        )
    ).all()
    assert len(enterprises) >= 18
    unbalanced = set()
    for enterprise_id, code in enterprises:
        for start in MONTHS:
            end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
            result = await mass_balance(
                sample_session,
                caller=SYSTEM,
                enterprise_id=enterprise_id,
                period_start=start,
                period_end=date.fromordinal(end.toordinal() - 1),
                tolerance=0.05,
            )
            if not result.material.within_tolerance:
                unbalanced.add((code, start.isoformat()))
    planted = {(u["enterprise"], u["period_start"]) for u in PLANTED["unbalanced"]}
    assert unbalanced == planted
