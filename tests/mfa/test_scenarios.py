"""What-if scenarios: each kind of change against a calculation by hand here.

January 2025 (31 days) of ``gap_world``: the mill landfills 300 kg of steel scrap (fee 500
VND/kg); the stamper buys 250 kg of virgin pig iron (20,000 VND/kg); the mill takes 10,000 kWh
from the grid (1,800 VND/kWh); the stamper withdraws 100 m3 of water (10,000 VND/m3) and sends
out 60 m3 of wastewater. Factors: the shipped grid file (2023: 0.6592 kg CO2/kWh, the latest
at or before 2025) and test factors (pig iron 1.9; scrap disposal 0.05, reprocessing 0.4).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from factories import JAN, World
from sqlalchemy.ext.asyncio import AsyncSession
from test_gaps import gap_world
from test_symbiosis import test_factors  # noqa: F401  (fixture)

from mfa.access import Caller
from mfa.errors import BatchValidationError, DuplicateError, MfaError
from mfa.ledger import record_flows
from mfa.models import Flow, ScenarioChangeKind
from mfa.scenarios import (
    ChangeCreate,
    ScenarioCreate,
    create_scenario,
    evaluate_scenario,
    get_scenario,
)

GRID_2023 = 0.6592
YEAR = 365 / 31


async def _world(session: AsyncSession, caller: Caller) -> World:
    w = await gap_world(session, caller)
    await record_flows(
        session,
        [
            w.flow("mill", "landfill", "steel-scrap", 300, value="150000", currency="VND"),
            w.flow("supplier", "stamper", "pig-iron", 250, value="5000000", currency="VND"),
            w.flow("grid", "mill", "electricity", 10, unit="MWh", value="18000000", currency="VND"),
            w.flow("supplier", "stamper", "water", 100, unit="m3", value="1000000", currency="VND"),
            w.flow("stamper", "landfill", "wastewater", 60, unit="m3"),
        ],
        caller=caller,
    )
    return w


async def _create(
    session: AsyncSession, caller: Caller, w: World, *changes: ChangeCreate, name: str = "s"
) -> int:
    stored = await create_scenario(
        session,
        ScenarioCreate(
            park_id=w.park, name=name, period_start=JAN[0], period_end=JAN[1], changes=changes
        ),
        caller=caller,
    )
    return stored.id


def _reroute(w: World, share: float) -> ChangeCreate:
    return ChangeCreate(
        kind=ScenarioChangeKind.REROUTE_WASTE,
        enterprise_id=w.nodes["mill"],
        share=share,
        material_id=w.materials["steel-scrap"],
        partner_id=w.nodes["stamper"],
        replaced_material_id=w.materials["pig-iron"],
    )


@pytest.mark.usefixtures("test_factors")
async def test_rerouting_waste_avoids_disposal_virgin_input_co2e_and_cost(
    session: AsyncSession, caller: Caller
) -> None:
    w = await _world(session, caller)
    result = await evaluate_scenario(
        session, await _create(session, caller, w, _reroute(w, 0.5)), caller=caller
    )
    (change,) = result.changes
    moved = 0.5 * 300  # ≤ 250 bought
    assert (change.baseline, change.moved, change.unit) == (300, moved, "kg")
    effects = {e.enterprise_id: e.period for e in result.enterprises}
    mill, stamper = effects[w.nodes["mill"]], effects[w.nodes["stamper"]]
    assert mill.waste_to_disposal == -moved
    assert mill.co2e == pytest.approx(-moved * 0.05)
    assert mill.cost[0].amount == pytest.approx(-moved * 500)
    assert stamper.virgin_material == -moved
    assert stamper.co2e == pytest.approx(-moved * 1.9 + moved * 0.4)
    assert stamper.cost[0].amount == pytest.approx(-moved * 20_000)
    assert result.park.co2e == pytest.approx(-moved * (1.9 + 0.05 - 0.4))
    assert result.park_per_year.waste_to_disposal == pytest.approx(-moved * YEAR)
    assert result.missing == ()


@pytest.mark.usefixtures("test_factors")
async def test_rerouting_more_than_the_neighbour_buys_is_capped(
    session: AsyncSession, caller: Caller
) -> None:
    w = await _world(session, caller)
    result = await evaluate_scenario(
        session, await _create(session, caller, w, _reroute(w, 1.0)), caller=caller
    )
    (change,) = result.changes
    assert change.moved == 250
    assert any("capped" in note for note in change.notes)


async def test_solar_for_grid_saves_the_grid_factor_and_names_the_missing_solar_factor(
    session: AsyncSession, caller: Caller
) -> None:
    w = await _world(session, caller)
    change = ChangeCreate(ScenarioChangeKind.SOLAR_FOR_GRID, w.nodes["mill"], 0.3)
    result = await evaluate_scenario(
        session, await _create(session, caller, w, change), caller=caller
    )
    (evaluated,) = result.changes
    assert (evaluated.baseline, evaluated.moved) == (10_000, pytest.approx(3_000))
    assert result.park.co2e == pytest.approx(-3_000 * GRID_2023)
    assert result.park.cost[0].amount == pytest.approx(-3_000 * 1_800)
    assert result.park_per_year.co2e == pytest.approx(-3_000 * GRID_2023 * YEAR)
    assert any("solar" in m for m in result.missing)
    assert "grid factor of 2023 used for 2025" in evaluated.notes


async def test_water_reuse_cuts_withdrawal_and_wastewater(
    session: AsyncSession, caller: Caller
) -> None:
    w = await _world(session, caller)
    change = ChangeCreate(
        ScenarioChangeKind.WATER_REUSE, w.nodes["stamper"], 0.8, material_id=w.materials["water"]
    )
    result = await evaluate_scenario(
        session, await _create(session, caller, w, change), caller=caller
    )
    (stamper,) = result.enterprises
    assert stamper.period.water_withdrawn == pytest.approx(-80)
    assert stamper.period.wastewater == pytest.approx(-60)  # only 60 m3 is sent out
    assert stamper.period.cost[0].amount == pytest.approx(-80 * 10_000)
    assert stamper.period.co2e == 0
    assert "water: no supply factor" in result.missing
    assert any("wastewater fee" in n for n in result.notes)


@pytest.mark.usefixtures("test_factors")
async def test_a_scenario_sums_its_changes_in_the_seeds_shape_and_leaves_the_ledger(
    session: AsyncSession, caller: Caller
) -> None:
    w = await _world(session, caller)
    flows = Flow.__table__  # type: ignore[attr-defined]
    before = (await session.execute(sa.select(sa.func.count()).select_from(flows))).scalar()
    scenario_id = await _create(
        session,
        caller,
        w,
        _reroute(w, 0.5),
        ChangeCreate(ScenarioChangeKind.SOLAR_FOR_GRID, w.nodes["mill"], 0.3),
        ChangeCreate(
            ScenarioChangeKind.WATER_REUSE,
            w.nodes["stamper"],
            0.8,
            material_id=w.materials["water"],
        ),
    )
    result = await evaluate_scenario(session, scenario_id, caller=caller)
    co2e = -150 * (1.9 + 0.05 - 0.4) - 3_000 * GRID_2023
    cost = -150 * (500 + 20_000) - 3_000 * 1_800 - 80 * 10_000
    assert result.park.co2e == pytest.approx(co2e)
    assert result.park.cost[0].amount == pytest.approx(cost)
    assert result.summary.startswith(
        f"3 solutions saving {-cost * YEAR:,.0f} VND/yr, {-co2e * YEAR / 1000:,.1f} t CO2e/yr"
    )
    assert f"{60 * YEAR:,.1f} m3 wastewater/yr" in result.summary
    after = (await session.execute(sa.select(sa.func.count()).select_from(flows))).scalar()
    assert after == before
    stored = await get_scenario(session, scenario_id, caller=caller)
    assert [c.kind for c in stored.changes] == [
        ScenarioChangeKind.REROUTE_WASTE,
        ScenarioChangeKind.SOLAR_FOR_GRID,
        ScenarioChangeKind.WATER_REUSE,
    ]


async def test_bad_changes_are_refused_each_with_its_field(
    session: AsyncSession, caller: Caller
) -> None:
    w = await _world(session, caller)
    wrong_substitute = ChangeCreate(
        kind=ScenarioChangeKind.REROUTE_WASTE,
        enterprise_id=w.nodes["mill"],
        share=0.5,
        material_id=w.materials["steel-scrap"],
        partner_id=w.nodes["stamper"],
        replaced_material_id=w.materials["steel-coil"],  # HS 7208: not in the crosswalk
    )
    no_share = ChangeCreate(ScenarioChangeKind.SOLAR_FOR_GRID, w.nodes["mill"], 1.5)
    not_an_enterprise = ChangeCreate(ScenarioChangeKind.SOLAR_FOR_GRID, w.nodes["landfill"], 0.5)
    with pytest.raises(BatchValidationError) as raised:
        await _create(session, caller, w, wrong_substitute, no_share, not_an_enterprise)
    fields = {e.field for e in raised.value.errors}
    assert fields == {
        ("changes", "0", "replacedMaterial"),
        ("changes", "1", "share"),
        ("changes", "2", "enterprise"),
    }
    with pytest.raises(MfaError) as empty:
        await _create(session, caller, w)
    assert empty.value.field == ("changes",)


async def test_a_name_is_used_once_per_park(session: AsyncSession, caller: Caller) -> None:
    w = await _world(session, caller)
    change = ChangeCreate(ScenarioChangeKind.SOLAR_FOR_GRID, w.nodes["mill"], 0.5)
    await _create(session, caller, w, change, name="rooftop")
    with pytest.raises(DuplicateError):
        await _create(session, caller, w, change, name="rooftop")
