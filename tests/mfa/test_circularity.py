"""Circularity indicators against hand calculations on a small network built here.

The network (January 2025, kg unless said): the mill buys virgin coil, recycled steel and a
bio-based resin, gets scrap back from the stamper it sells coil to (a loop), sells coil and
slag outside, sends waste to landfill, a recycler, a collector and a power plant in the park,
and draws grid power, diesel, rooftop solar from the power plant, water and reclaimed water.
Every expected figure below is written out as arithmetic from these quantities.
"""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from factories import FEB, JAN, World, make_world
from sqlalchemy.ext.asyncio import AsyncSession

from mfa.access import SYSTEM, Caller
from mfa.circularity import EndOfLife, Scope, ScopeKind, WasteFate, circularity, resolve_scope
from mfa.circularity.indicators import Ratio
from mfa.circularity.mci import MciInputs, mass_weighted, material_circularity
from mfa.db import create_async, session_factory
from mfa.errors import MfaError, NotFoundError, PeriodError, QuantityError
from mfa.ledger import record_flows, reverse_flow
from mfa.models import MaterialKind, NodeKind
from mfa.reads import FlowFilter, flow_page
from mfa.registry import MaterialCreate, NodeCreate, create_material, create_node
from mfa.units import Dimension

# steel-coil: recovery potential 0.8 × actual recovery 0.5; MCI C_R 0.5, E_C 0.9, E_F 0.8,
# L/L_av 1.5.
COIL = EndOfLife(
    recovery_potential=0.8,
    actual_recovery=0.5,
    collected_recycling=0.5,
    recycling_efficiency_eol=0.9,
    recycling_efficiency_feedstock=0.8,
    lifetime_ratio=1.5,
    source="test",
)
EOL = {"steel-coil": COIL}
DIESEL_KWH_PER_KG = 43.0 / 3.6  # IPCC 2006 NCV 43.0 TJ/Gg = 43.0 MJ/kg; 3.6 MJ per kWh

EXTRA_MATERIALS = [
    ("recycled-steel", MaterialKind.PRODUCT, Dimension.MASS, None, False, True),
    ("bio-resin", MaterialKind.PRODUCT, Dimension.MASS, None, True, False),
    ("slag", MaterialKind.BY_PRODUCT, Dimension.MASS, "2619", False, False),
    ("diesel", MaterialKind.ENERGY, Dimension.MASS, None, False, False),
    ("wood-pellets", MaterialKind.ENERGY, Dimension.MASS, None, True, False),
    ("solar", MaterialKind.ENERGY, Dimension.ENERGY, None, True, False),
    ("reclaimed", MaterialKind.WATER, Dimension.VOLUME, None, False, True),
]
EXTRA_NODES = [
    ("recycler", NodeKind.RECYCLER, None),
    ("wwtp", NodeKind.WASTEWATER_TREATMENT, None),
    ("collector", NodeKind.ENTERPRISE, "3811"),
    ("power", NodeKind.ENTERPRISE, "3510"),
]


async def _world(session: AsyncSession, caller: Caller) -> World:
    world = await make_world(session, caller)
    for code, kind, dimension, hs, renewable, secondary in EXTRA_MATERIALS:
        material = await create_material(
            session,
            MaterialCreate(
                code=code,
                name=code,
                kind=kind,
                dimension=dimension,
                hs_code=hs,
                renewable=renewable,
                secondary=secondary,
            ),
            caller=caller,
        )
        assert material.id is not None
        world.materials[code] = material.id
    for code, node_kind, isic in EXTRA_NODES:
        node = await create_node(
            session,
            NodeCreate(park_id=world.park, code=code, name=code, kind=node_kind, isic_code=isic),
            caller=caller,
        )
        assert node.id is not None
        world.nodes[code] = node.id
    return world


@pytest.fixture
async def world(session: AsyncSession, caller: Caller) -> World:
    world = await _world(session, caller)
    w = world.flow
    await record_flows(
        session,
        [
            # mill inflows: 600 + 300 + 100 + 200 = 1200 kg, circular 300 + 100 = 400
            w("supplier", "mill", "steel-coil", 600),
            w("supplier", "mill", "recycled-steel", 300),
            w("supplier", "mill", "bio-resin", 100),
            w("stamper", "mill", "steel-scrap", 200, reporter="stamper"),
            # mill outflows: 500 + 300 + 50 + 100 + 20 + 30 + 40 = 1040 kg
            w("mill", "stamper", "steel-coil", 500, reporter="mill"),
            w("mill", "customer", "steel-coil", 300),
            w("mill", "landfill", "solvent", 50),
            w("mill", "recycler", "steel-scrap", 100),
            w("mill", "collector", "steel-scrap", 20, reporter="mill"),
            w("mill", "power", "solvent", 30, reporter="mill"),
            w("mill", "customer", "slag", 40),
            # the collector passes its scrap on to the recycler
            w("collector", "recycler", "steel-scrap", 20),
            # energy: 1000 kWh grid, 10 kg diesel, 500 kWh solar, 5 kg wood pellets
            w("grid", "mill", "electricity", 1000, unit="kWh"),
            w("supplier", "mill", "diesel", 10),
            w("power", "mill", "solar", 500, unit="kWh", reporter="power"),
            w("supplier", "mill", "wood-pellets", 5),
            # water: 100 m3 fresh, 50 m3 reclaimed in; 120 treated, 10 reused, 20 lost out
            w("supplier", "mill", "water", 100, unit="m3"),
            w("stamper", "mill", "reclaimed", 50, unit="m3", reporter="stamper"),
            w("mill", "wwtp", "wastewater", 120, unit="m3"),
            w("mill", "stamper", "wastewater", 10, unit="m3", reporter="mill"),
            w("mill", "landfill", "wastewater", 20, unit="m3"),
            # outside January: a later month, and a flow straddling the end of January
            w("supplier", "mill", "steel-coil", 999, period=FEB),
            w("supplier", "mill", "steel-coil", 777, period=(date(2025, 1, 15), FEB[1])),
        ],
        caller=caller,
    )
    return world


def _mill(world: World) -> Scope:
    return Scope(ScopeKind.ENTERPRISE, world.park, (world.nodes["mill"],))


async def _sum_flows(session: AsyncSession, caller: Caller, ratio: Ratio) -> tuple[float, int]:
    """Page through the flows behind a ratio as an auditor would: Σ quantity and count."""
    total, count, after = 0.0, 0, None
    while True:
        page = await flow_page(
            session,
            caller=caller,
            flt=FlowFilter(),
            first=7,
            after_id=after,
            where=ratio.flows.conditions,
        )
        total += sum(f.quantity for f in page.items)
        count += len(page.items)
        assert page.total_count == ratio.flows.entries
        if not page.has_next:
            return total, count
        after = page.items[-1].id


async def test_cti_material_indicators_of_an_enterprise_match_the_hand_calculation(
    session: AsyncSession, caller: Caller, world: World
) -> None:
    result = await circularity(
        session,
        caller=caller,
        scope=_mill(world),
        period_start=JAN[0],
        period_end=JAN[1],
        end_of_life=EOL,
    )
    m = result.material
    assert m.circular_inflow.denominator == 600 + 300 + 100 + 200
    assert m.circular_inflow.value == pytest.approx((300 + 100) / 1200)
    # coil to the customer (300) and to the stamper (500), each × 0.8 × 0.5; scrap to the
    # recycler 100; slag (scrap heading 2619) to a customer 40; solvent to landfill and to the
    # power plant (energy recovery) 0; scrap handed to the collector 0.
    circular_out = 300 * 0.8 * 0.5 + 500 * 0.8 * 0.5 + 100 + 40
    assert m.circular_outflow.denominator == 500 + 300 + 50 + 100 + 20 + 30 + 40
    assert m.circular_outflow.value == pytest.approx(circular_out / 1040)
    assert m.material_circularity.value == pytest.approx((400 + circular_out) / (1200 + 1040))


async def test_every_ratio_traces_to_flows_summing_to_its_denominator(
    session: AsyncSession, caller: Caller, world: World
) -> None:
    result = await circularity(
        session,
        caller=caller,
        scope=_mill(world),
        period_start=JAN[0],
        period_end=JAN[1],
        end_of_life=EOL,
    )
    for ratio in (
        result.material.circular_inflow,
        result.material.circular_outflow,
        result.material.material_circularity,
        result.water.circular_inflow,
        result.water.circular_outflow,
        result.waste.kept_inside,
    ):
        total, count = await _sum_flows(session, caller, ratio)
        assert total == pytest.approx(ratio.denominator)
        assert count == ratio.flows.entries > 0
    assert result.material.circular_inflow.flows.entries == 4


async def test_renewable_energy_converts_fuels_and_lists_those_it_cannot(
    session: AsyncSession, caller: Caller, world: World
) -> None:
    result = await circularity(
        session, caller=caller, scope=_mill(world), period_start=JAN[0], period_end=JAN[1]
    )
    share = result.energy.renewable_share
    used = 1000 + 10 * DIESEL_KWH_PER_KG + 500
    assert share.denominator == pytest.approx(used)
    assert share.value == pytest.approx(500 / used)
    (pellets,) = result.energy.unconverted
    assert (pellets.material_id, pellets.quantity, pellets.unit) == (
        world.materials["wood-pellets"],
        5,
        "kg",
    )
    assert any("wood-pellets" in a for a in result.assumptions)


async def test_park_counts_solar_made_inside_and_not_the_loop_between_enterprises(
    session: AsyncSession, caller: Caller, world: World
) -> None:
    scope = await resolve_scope(session, caller=caller, park_id=world.park)
    result = await circularity(
        session,
        caller=caller,
        scope=scope,
        period_start=JAN[0],
        period_end=JAN[1],
        end_of_life=EOL,
    )
    # solar from the power plant to the mill is internal but made inside: still counted
    assert result.energy.renewable_share.value == pytest.approx(
        500 / (1000 + 10 * DIESEL_KWH_PER_KG + 500)
    )
    # material inflows to the park: only from the supplier (the scrap loop is internal)
    assert result.material.circular_inflow.denominator == 600 + 300 + 100
    assert result.material.circular_inflow.value == pytest.approx(400 / 1000)
    # water: fresh 100 in from outside, reclaimed 50 delivered inside, both used
    assert result.water.circular_inflow.value == pytest.approx(50 / 150)


async def test_a_loop_between_two_enterprises_is_internal_to_their_group(
    session: AsyncSession, caller: Caller, world: World
) -> None:
    pair = await resolve_scope(
        session, caller=caller, enterprise_ids=[world.nodes["stamper"], world.nodes["mill"]]
    )
    assert pair.kind is ScopeKind.ENTERPRISES
    result = await circularity(
        session,
        caller=caller,
        scope=pair,
        period_start=JAN[0],
        period_end=JAN[1],
        end_of_life=EOL,
    )
    # coil mill → stamper (500) and scrap stamper → mill (200) are neither in nor out
    assert result.material.circular_inflow.denominator == 600 + 300 + 100
    assert result.material.circular_outflow.denominator == 300 + 50 + 100 + 20 + 30 + 40
    # water: the 10 m3 mill → stamper and 50 m3 stamper → mill stay inside; the reclaimed
    # water is still used (circular, delivered inside): (50) / (100 + 50)
    assert result.water.circular_inflow.value == pytest.approx(50 / 150)
    assert result.water.circular_outflow.denominator == 120 + 20


async def test_water_circularity_matches_the_hand_calculation(
    session: AsyncSession, caller: Caller, world: World
) -> None:
    result = await circularity(
        session, caller=caller, scope=_mill(world), period_start=JAN[0], period_end=JAN[1]
    )
    w = result.water
    assert w.circular_inflow.value == pytest.approx(50 / (100 + 50))
    assert w.circular_outflow.value == pytest.approx((120 + 10) / (120 + 10 + 20))
    assert w.water_circularity.value == pytest.approx((50 + 130) / (150 + 150))


async def test_waste_totals_by_fate_and_share_kept_inside(
    session: AsyncSession, caller: Caller, world: World
) -> None:
    mill = await circularity(
        session, caller=caller, scope=_mill(world), period_start=JAN[0], period_end=JAN[1]
    )
    fates = {t.fate: t.quantity for t in mill.waste.fates}
    assert fates == {
        WasteFate.LANDFILLED: 50,
        WasteFate.RECYCLED: 100,
        WasteFate.COLLECTED: 20,
        WasteFate.RECOVERED_FOR_ENERGY: 30,
    }
    assert mill.waste.total == 200
    assert mill.waste.hazardous == 50 + 30  # the solvent, EWC 14 06 03*
    assert mill.waste.kept_inside.value == pytest.approx(30 / 200)

    scope = await resolve_scope(session, caller=caller, park_id=world.park)
    park = await circularity(
        session, caller=caller, scope=scope, period_start=JAN[0], period_end=JAN[1]
    )
    # the mill's 20 kg to the collector is a pass-through: the collector's 20 kg to the
    # recycler carries its fate; the stamper's 200 kg of scrap is recycled by the mill
    fates = {t.fate: t.quantity for t in park.waste.fates}
    assert fates == {
        WasteFate.LANDFILLED: 50,
        WasteFate.RECYCLED: 100 + 200 + 20,
        WasteFate.RECOVERED_FOR_ENERGY: 30,
    }
    assert park.waste.kept_inside.value == pytest.approx((200 + 30) / 400)


async def test_mci_of_a_product_follows_the_published_formula(
    session: AsyncSession, caller: Caller, world: World
) -> None:
    result = await circularity(
        session,
        caller=caller,
        scope=_mill(world),
        period_start=JAN[0],
        period_end=JAN[1],
        end_of_life=EOL,
    )
    (mill,) = result.enterprises
    (coil,) = mill.products
    # M = 500 + 300 = 800 kg of coil; feedstock 1200 kg: F_R = 300/1200, F_S = 100/1200
    m, f_r, f_s = 800.0, 300 / 1200, 100 / 1200
    v = m * (1 - f_r - 0 - f_s)  # 533.33
    w0 = m * (1 - 0.5)  # 400
    w_c = m * (1 - 0.9) * 0.5  # 40
    w_f = m * f_r * (1 - 0.8) / 0.8  # 50
    w = w0 + (w_f + w_c) / 2  # 445
    lfi = (v + w) / (2 * m + (w_f - w_c) / 2)  # 978.33 / 1605
    assert coil.result.lfi == pytest.approx(lfi)
    assert coil.result.mci == pytest.approx(1 - lfi * 0.9 / 1.5)
    assert mill.mci == pytest.approx(1 - lfi * 0.9 / 1.5)
    assert result.mci == pytest.approx(mill.mci)


def test_mci_worked_example_by_hand() -> None:
    """M = 100 kg; F_R 0.3, F_S 0.2; C_R 0.4, C_U 0.1, C_E 0.1; E_C 0.8, E_F 0.75; X = 2.

    V = 100 (1 − 0.5) = 50; W0 = 100 (1 − 0.6) = 40; W_C = 100 × 0.2 × 0.4 = 8;
    W_F = 100 × 0.3 × 0.25 / 0.75 = 10; W = 40 + (10 + 8)/2 = 49;
    LFI = (50 + 49) / (200 + (10 − 8)/2) = 99 / 201; F(X) = 0.9 / 2 = 0.45;
    MCI = 1 − 99/201 × 0.45 = 0.77836 (to 5 places).
    """
    eol = EndOfLife(
        collected_recycling=0.4,
        collected_reuse=0.1,
        collected_energy=0.1,
        recycling_efficiency_eol=0.8,
        recycling_efficiency_feedstock=0.75,
        lifetime_ratio=2.0,
    )
    r = material_circularity(MciInputs(100, 0.3, 0.0, 0.2, eol))
    assert (r.virgin, r.unrecoverable) == pytest.approx((50, 40))
    assert (r.recycling_waste, r.feedstock_waste, r.waste) == pytest.approx((8, 10, 49))
    assert r.lfi == pytest.approx(99 / 201)
    assert r.mci == pytest.approx(0.77836, abs=5e-6)
    linear = material_circularity(MciInputs(300, 0.0, 0.0, 0.0, EndOfLife()))
    assert linear.mci == pytest.approx(0.1)  # LFI = 1, MCI = 1 − 0.9
    assert mass_weighted([r, linear]) == pytest.approx((100 * r.mci + 300 * 0.1) / 400)


def test_mci_refuses_shares_that_do_not_add_up() -> None:
    with pytest.raises(QuantityError, match="F_R, F_U, F_S"):
        material_circularity(MciInputs(10, 0.7, 0.0, 0.5, EndOfLife()))
    with pytest.raises(QuantityError, match="positive"):
        material_circularity(MciInputs(0, 0.0, 0.0, 0.0, EndOfLife()))


async def test_all_recycled_inputs_and_full_recovery_score_fully_circular(
    session: AsyncSession, caller: Caller
) -> None:
    world = await _world(session, caller)
    w = world.flow
    await record_flows(
        session,
        [
            w("supplier", "assembler", "recycled-steel", 400),
            w("assembler", "recycler", "steel-scrap", 100),
            w("assembler", "customer", "parts", 300),
        ],
        caller=caller,
    )
    scope = Scope(ScopeKind.ENTERPRISE, world.park, (world.nodes["assembler"],))
    perfect = EndOfLife(
        recovery_potential=1.0, actual_recovery=1.0, collected_recycling=1.0, source="test"
    )
    result = await circularity(
        session,
        caller=caller,
        scope=scope,
        period_start=JAN[0],
        period_end=JAN[1],
        end_of_life={"parts": perfect},
    )
    assert result.material.circular_inflow.value == 1.0
    assert result.material.circular_outflow.value == 1.0
    assert result.material.material_circularity.value == 1.0
    # V = 0, W0 = 0, W_C = W_F = 0 (E = 1): LFI = 0, MCI = 1
    assert result.mci == 1.0
    assert result.energy.renewable_share.value is None


async def test_no_inflow_or_no_outflow_leaves_that_share_undefined_not_zero(
    session: AsyncSession, caller: Caller, world: World
) -> None:
    await record_flows(
        session, [world.flow("assembler", "customer", "parts", 70, period=FEB)], caller=caller
    )
    assembler = Scope(ScopeKind.ENTERPRISE, world.park, (world.nodes["assembler"],))
    result = await circularity(
        session, caller=caller, scope=assembler, period_start=FEB[0], period_end=FEB[1]
    )
    assert (
        result.material.circular_inflow.value,
        result.material.circular_inflow.flows.entries,
    ) == (None, 0)
    assert result.material.circular_outflow.value == 0.0  # parts without recovery data
    assert result.material.material_circularity.value == 0.0  # (0 + 0) / (0 + 70)
    # the power plant receives 30 kg of solvent and sends only solar: no material outflow
    power = Scope(ScopeKind.ENTERPRISE, world.park, (world.nodes["power"],))
    result = await circularity(
        session, caller=caller, scope=power, period_start=JAN[0], period_end=JAN[1]
    )
    assert (
        result.material.circular_outflow.value,
        result.material.circular_outflow.flows.entries,
    ) == (None, 0)
    assert result.material.circular_inflow.value == 0.0


async def test_a_period_without_flows_gives_undefined_shares_and_no_flows(
    session: AsyncSession, caller: Caller, world: World
) -> None:
    result = await circularity(
        session,
        caller=caller,
        scope=_mill(world),
        period_start=date(2024, 1, 1),
        period_end=date(2024, 12, 31),
    )
    for ratio in (
        result.material.circular_inflow,
        result.material.material_circularity,
        result.energy.renewable_share,
        result.water.water_circularity,
        result.waste.kept_inside,
    ):
        assert (ratio.value, ratio.denominator, ratio.flows.entries) == (None, 0, 0)
    assert result.waste.fates == ()
    assert result.mci is None


async def test_a_reversed_flow_nets_to_zero_but_stays_traceable(
    session: AsyncSession, caller: Caller
) -> None:
    world = await _world(session, caller)
    recorded = await record_flows(
        session, [world.flow("supplier", "assembler", "bio-resin", 80, period=FEB)], caller=caller
    )
    await reverse_flow(session, recorded.entries[0].flow_id, caller=caller, reason="duplicate")
    scope = Scope(ScopeKind.ENTERPRISE, world.park, (world.nodes["assembler"],))
    result = await circularity(
        session, caller=caller, scope=scope, period_start=FEB[0], period_end=FEB[1]
    )
    inflow = result.material.circular_inflow
    assert (inflow.value, inflow.denominator, inflow.flows.entries) == (None, 0, 2)


async def test_only_flows_inside_the_period_count(
    session: AsyncSession, caller: Caller, world: World
) -> None:
    feb = await circularity(
        session, caller=caller, scope=_mill(world), period_start=FEB[0], period_end=FEB[1]
    )
    assert feb.material.circular_inflow.denominator == 999  # not the straddling 777
    both = await circularity(
        session, caller=caller, scope=_mill(world), period_start=JAN[0], period_end=FEB[1]
    )
    assert both.material.circular_inflow.denominator == 1200 + 999 + 777


async def test_indicators_take_three_statements_whatever_the_flows(
    session: AsyncSession, caller: Caller, world: World, engine: object, count_statements: object
) -> None:
    statements = count_statements(engine)  # type: ignore[operator]
    await circularity(
        session, caller=caller, scope=_mill(world), period_start=JAN[0], period_end=JAN[1]
    )
    assert len([s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]) == 3


async def test_scopes_refuse_boundary_nodes_mixed_parks_and_bad_periods(
    session: AsyncSession, caller: Caller, world: World
) -> None:
    with pytest.raises(NotFoundError, match="no enterprise"):
        await resolve_scope(session, caller=caller, enterprise_ids=[world.nodes["landfill"]])
    other = await make_world(session, caller, code="other-park")
    with pytest.raises(MfaError, match="one park"):
        await resolve_scope(
            session, caller=caller, enterprise_ids=[world.nodes["mill"], other.nodes["mill"]]
        )
    with pytest.raises(MfaError, match="either a park"):
        await resolve_scope(session, caller=caller)
    with pytest.raises(PeriodError):
        await circularity(
            session, caller=caller, scope=_mill(world), period_start=FEB[1], period_end=FEB[0]
        )


SAMPLE = Path(__file__).resolve().parents[2] / "datasets"
SCRAP_HEADINGS = ("2618", "2619", "2620", "2621", "3915", "4707", "7001", "7204", "7404", "7602")
TO_KG = {"t": 1000.0, "kg": 1.0}


def _planted_scrap_kg() -> float:
    """kg of scrap-heading wastes moved along the planted symbiosis links in 2025, read from
    the CSV files: each transfer once, with the first report's quantity."""
    planted = json.loads((SAMPLE / "sample_park/planted.json").read_text())
    links = {(k["source"], k["target"], k["material"]) for k in planted["symbiosis_links"]}
    with (SAMPLE / "materials/materials.csv").open() as handle:
        scrap = {
            m["code"]
            for m in csv.DictReader(handle)
            if m["kind"] == "waste" and m["hs_code"].startswith(SCRAP_HEADINGS)
        }
    seen: set[tuple[str, ...]] = set()
    total = 0.0
    with (SAMPLE / "sample_park/flows.csv").open() as handle:
        for r in csv.DictReader(handle):
            key = (r["source"], r["target"], r["material"])
            if key in links and r["material"] in scrap and (*key, r["period_start"]) not in seen:
                seen.add((*key, r["period_start"]))
                total += float(r["quantity"]) * TO_KG[r["unit"]]
    return total


async def test_sample_park_recycles_the_planted_scrap_inside_the_park(
    sample_database_url: str,
) -> None:
    expected = _planted_scrap_kg()
    engine = create_async(sample_database_url)
    try:
        async with session_factory(engine)() as session:
            park_id = (await session.execute(sa.text("SELECT id FROM park"))).scalar_one()
            scope = await resolve_scope(session, caller=SYSTEM, park_id=park_id)
            result = await circularity(
                session,
                caller=SYSTEM,
                scope=scope,
                period_start=date(2025, 1, 1),
                period_end=date(2025, 12, 31),
            )
    finally:
        await engine.dispose()
    recycled = {t.fate: t for t in result.waste.fates}[WasteFate.RECYCLED]
    assert expected > 0
    assert recycled.kept_inside == pytest.approx(expected, rel=1e-9)
    for ratio in (
        result.material.circular_inflow,
        result.material.circular_outflow,
        result.energy.renewable_share,
        result.water.water_circularity,
        result.waste.kept_inside,
    ):
        assert ratio.value is not None
        assert 0 < ratio.value <= 1
    assert result.mci is not None
    assert 0 < result.mci < 1
