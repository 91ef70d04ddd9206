"""Symbiosis opportunities: every figure of a match against a calculation by hand here.

The running example (January 2025, 31 days): the mill landfills 300 kg of steel scrap (EWC
12 01 01, fee 500 VND/kg recorded) while the stamper buys 250 kg of virgin pig iron (HS 7201,
20,000 VND/kg recorded). Test factors, not sourced figures, are written to a temporary
datasets folder: pig iron 1.9 kg CO2e/kg cradle-to-gate; steel scrap disposal 0.05 and
reprocessing 0.4 kg CO2e/kg.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from factories import FEB, JAN
from sqlalchemy.ext.asyncio import AsyncSession
from test_gaps import gap_world

from lca import factors
from mfa.access import Caller
from mfa.errors import NotFoundError
from mfa.ledger import record_flows
from mfa.models import NodeKind
from mfa.settings import Settings, get_settings
from mfa.symbiosis import ASSUMPTIONS, symbiosis_opportunities

DAYS = 31
PER_YEAR = 365 / DAYS


@pytest.fixture
def test_factors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "factors"
    folder.mkdir()
    shutil.copy(get_settings().datasets_dir / "factors" / "grid_vn.csv", folder)
    (folder / "purchased_materials.csv").write_text(
        "material,kg_co2e_per_unit,unit,source,note\npig-iron,1.9,kg,test figure,\n"
    )
    (folder / "recycling_emissions.csv").write_text(
        "material,e_v,e_recycled,e_recycling_eol,e_v_substituted,e_disposal,unit,source\n"
        "steel-scrap,1.9,0.4,0.4,,0.05,kg,test figure\n"
    )
    monkeypatch.setattr(factors, "get_settings", lambda: Settings(datasets_dir=tmp_path))


async def _example(session: AsyncSession, caller: Caller, *, valued: bool = True) -> int:
    """The running example; returns the park's id."""
    w = await gap_world(session, caller)
    fee = {"value": "150000", "currency": "VND"} if valued else {}
    price = {"value": "5000000", "currency": "VND"} if valued else {}
    await record_flows(
        session,
        [
            w.flow("mill", "landfill", "steel-scrap", 300, **fee),
            w.flow("supplier", "stamper", "pig-iron", 250, **price),
            w.flow("supplier", "assembler", "pig-iron", 100),
        ],
        caller=caller,
    )
    return w.park


@pytest.mark.usefixtures("test_factors")
async def test_each_figure_of_an_opportunity_matches_the_hand_calculation(
    session: AsyncSession, caller: Caller
) -> None:
    park = await _example(session, caller)
    result = await symbiosis_opportunities(
        session, caller=caller, park_id=park, period_start=JAN[0], period_end=JAN[1]
    )
    assert result.days == DAYS
    assert result.assumptions == ASSUMPTIONS
    first, second = result.items
    assert (first.rank, second.rank) == (1, 2)
    m = first.match
    assert (m.disposed, m.bought) == (300, 250)
    assert m.disposal_kind is NodeKind.LANDFILL
    movable = min(300, 250) * PER_YEAR
    assert first.movable_per_year == pytest.approx(movable)
    assert first.virgin_avoided_per_year == pytest.approx(movable)
    assert first.disposal_avoided_per_year == pytest.approx(movable)
    assert first.co2e_avoided_per_year == pytest.approx(movable * (1.9 + 0.05 - 0.4))
    assert first.missing_factors == ()
    (saved,) = first.cost_saved_per_year
    assert saved.currency == "VND"
    assert saved.amount == pytest.approx(movable * (5_000_000 / 250 + 150_000 / 300))
    # The assembler buys 100 kg, unpriced: it ranks second and says what is not counted.
    assert second.movable_per_year == pytest.approx(100 * PER_YEAR)
    assert second.cost_saved_per_year[0].amount == pytest.approx(100 * PER_YEAR * 500)
    assert "purchase price: not recorded" in second.cost_not_counted


async def test_missing_factors_leave_co2e_empty_and_are_named(
    session: AsyncSession, caller: Caller
) -> None:
    park = await _example(session, caller, valued=False)
    result = await symbiosis_opportunities(
        session, caller=caller, park_id=park, period_start=JAN[0], period_end=JAN[1]
    )
    first = result.items[0]
    assert first.co2e_avoided_per_year is None
    assert first.virgin_factor is None
    assert any("pig-iron" in m for m in first.missing_factors)
    assert any("steel-scrap" in m for m in first.missing_factors)
    assert first.cost_saved_per_year == ()
    assert set(first.cost_not_counted) == {
        "purchase price: not recorded",
        "disposal fee: not recorded",
    }


async def test_a_longer_period_is_scaled_to_a_year(session: AsyncSession, caller: Caller) -> None:
    park = await _example(session, caller, valued=False)
    result = await symbiosis_opportunities(
        session, caller=caller, park_id=park, period_start=JAN[0], period_end=FEB[1]
    )
    assert result.days == 31 + 28
    assert result.items[0].movable_per_year == pytest.approx(250 * 365 / 59)


async def test_an_unknown_park_is_refused(session: AsyncSession, caller: Caller) -> None:
    park = await _example(session, caller, valued=False)
    with pytest.raises(NotFoundError):
        await symbiosis_opportunities(
            session, caller=caller, park_id=park + 1, period_start=JAN[0], period_end=JAN[1]
        )
