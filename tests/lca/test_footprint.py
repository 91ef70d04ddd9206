"""Footprints of a hand-worked chain, against an independent numpy computation.

The chain, January 2025 (kg unless noted)::

    mine ─ore 2000─▶ mill ─coil 1000─▶ stamper ─parts 800─▶ assembler ─module 800─▶ customer
    fuel ─diesel 100─▶ mill            stamper ─scrap 100 (by-product)─▶ mill   (the loop)
    grid ─2000 kWh─▶ stamper           stamper ─offcuts 100─▶ landfill
    assembler ─CO2 40, N2O 0.5─▶ atmosphere

Two gases at least (CO2, CH4, N2O), a by-product loop solved by the matrix, mass allocation at
the stamper (parts 800 : scrap 100), the 2023 grid factor for 2025, and purchases with no
factor (ore, diesel upstream, landfill) reported as missing rather than counted.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from lca.characterisation import GwpMethod
from lca.inventory import Allocation, ParkInventory, build_inventory
from lca.model import solve
from mfa.access import Caller
from mfa.ledger import FlowCreate, record_flows
from mfa.models import MaterialKind, NodeKind
from mfa.registry import (
    MaterialCreate,
    NodeCreate,
    ParkCreate,
    create_material,
    create_node,
    create_park,
)
from mfa.units import Dimension

JAN = (date(2025, 1, 1), date(2025, 1, 31))
# Independent figures, from ../shared/domain/REFERENCE.md §4:
DIESEL_NCV = 43.0  # TJ/Gg
DIESEL_EF = {"co2": 74_100.0, "ch4": 3.0, "n2o": 0.6}  # kg/TJ
GRID_2023 = 0.6592  # kg CO2/kWh (t/MWh)
GWP_AR6 = {"co2": 1.0, "ch4": 29.8, "n2o": 273.0}


async def _chain(
    session: AsyncSession, caller: Caller, values: dict[str, str] | None = None
) -> tuple[int, dict[str, int], dict[str, int]]:
    park = await create_park(
        session, ParkCreate(code="lca", name="LCA park", country="VN"), caller=caller
    )
    assert park.id is not None
    nodes = {}
    for code, kind, isic in [
        ("mine", NodeKind.SUPPLIER, None),
        ("fuel", NodeKind.SUPPLIER, None),
        ("grid", NodeKind.GRID, None),
        ("mill", NodeKind.ENTERPRISE, "2410"),
        ("stamper", NodeKind.ENTERPRISE, "2592"),
        ("assembler", NodeKind.ENTERPRISE, "2930"),
        ("customer", NodeKind.CUSTOMER, None),
        ("landfill", NodeKind.LANDFILL, None),
        ("atmosphere", NodeKind.ATMOSPHERE, None),
    ]:
        node = await create_node(
            session,
            NodeCreate(park_id=park.id, code=code, name=code, kind=kind, isic_code=isic),
            caller=caller,
        )
        nodes[code] = node.id
    materials = {}
    for code, kind, dim in [
        ("ore", MaterialKind.PRODUCT, Dimension.MASS),
        ("diesel", MaterialKind.ENERGY, Dimension.MASS),
        ("coil", MaterialKind.PRODUCT, Dimension.MASS),
        ("scrap", MaterialKind.BY_PRODUCT, Dimension.MASS),
        ("parts", MaterialKind.PRODUCT, Dimension.MASS),
        ("module", MaterialKind.PRODUCT, Dimension.MASS),
        ("offcuts", MaterialKind.WASTE, Dimension.MASS),
        ("electricity", MaterialKind.ENERGY, Dimension.ENERGY),
        ("co2-fossil", MaterialKind.EMISSION, Dimension.MASS),
        ("n2o", MaterialKind.EMISSION, Dimension.MASS),
    ]:
        existing = await create_material(
            session, MaterialCreate(code=code, name=code, kind=kind, dimension=dim), caller=caller
        )
        materials[code] = existing.id
    rows = [
        ("mine", "mill", "ore", "2", "t"),
        ("fuel", "mill", "diesel", "100", "kg"),
        ("mill", "stamper", "coil", "1000", "kg"),
        ("stamper", "mill", "scrap", "100", "kg"),
        ("grid", "stamper", "electricity", "2", "MWh"),
        ("stamper", "assembler", "parts", "800", "kg"),
        ("stamper", "landfill", "offcuts", "100", "kg"),
        ("assembler", "customer", "module", "800", "kg"),
        ("assembler", "atmosphere", "co2-fossil", "40", "kg"),
        ("assembler", "atmosphere", "n2o", "0.5", "kg"),
    ]
    await record_flows(
        session,
        [
            FlowCreate(
                source_id=nodes[s],
                target_id=nodes[t],
                material_id=materials[m],
                quantity=q,
                unit=u,
                period_start=JAN[0],
                period_end=JAN[1],
                value=(values or {}).get(m),
                currency="VND" if m in (values or {}) else None,
            )
            for s, t, m, q, u in rows
        ],
        caller=caller,
    )
    return park.id, nodes, materials


def _independent(
    f_parts: float = 800 / 900, f_scrap: float = 100 / 900
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """A, B·(c) built by hand from the recipe: columns coil, parts, scrap, module, grid.

    The stamper's allocation factors default to mass (parts 800 : scrap 100)."""
    index = {"coil": 0, "parts": 1, "scrap": 2, "module": 3, "grid": 4}
    a = np.eye(5)
    a[index["scrap"], index["coil"]] -= 100 / 1000
    a[index["coil"], index["parts"]] -= 1000 * f_parts / 800
    a[index["grid"], index["parts"]] -= 2000 * f_parts / 800
    a[index["coil"], index["scrap"]] -= 1000 * f_scrap / 100
    a[index["grid"], index["scrap"]] -= 2000 * f_scrap / 100
    a[index["parts"], index["module"]] -= 800 / 800
    per_kg_diesel = {gas: DIESEL_NCV * 1e-6 * ef for gas, ef in DIESEL_EF.items()}
    b = np.zeros((3, 5))  # rows co2, ch4, n2o
    gases = ["co2", "ch4", "n2o"]
    for g, gas in enumerate(gases):
        b[g, index["coil"]] = 100 * per_kg_diesel[gas] / 1000
    b[0, index["grid"]] = GRID_2023
    b[0, index["module"]] = 40 / 800
    b[2, index["module"]] = 0.5 / 800
    characterised = np.array([GWP_AR6[g] for g in gases]) @ b
    return a, characterised, index


@pytest.fixture
async def inventory(session: AsyncSession, caller: Caller) -> ParkInventory:
    park_id, _, _ = await _chain(session, caller)
    return await build_inventory(
        session, caller=caller, park_id=park_id, period_start=JAN[0], period_end=JAN[1]
    )


def _index(inventory: ParkInventory, key: str) -> int:
    return inventory.activity(key).index


@pytest.mark.parametrize(
    ("product", "demand_column"),
    [
        ("production:assembler:module", "module"),
        ("production:mill:coil", "coil"),
        ("production:stamper:scrap", "scrap"),
    ],
)
async def test_product_footprint_equals_an_independent_numpy_solve(
    inventory: ParkInventory, product: str, demand_column: str
) -> None:
    a, characterised, index = _independent()
    demand = np.zeros(5)
    demand[index[demand_column]] = 1.0
    expected = characterised @ np.linalg.solve(a, demand)
    result = solve(inventory, {_index(inventory, product): 1.0}, method=GwpMethod.AR6)
    assert result.total == pytest.approx(expected, rel=1e-9)
    assert sum(result.by_activity.values()) == pytest.approx(result.total, rel=1e-9)
    assert sum(result.by_flow.values()) == pytest.approx(result.total, rel=1e-9)


async def test_missing_factors_are_listed_not_silently_zero(inventory: ParkInventory) -> None:
    missing = {(m.material_code, m.reason) for m in inventory.missing}
    assert ("ore", "no cradle-to-gate factor") in missing
    assert ("diesel", "no cradle-to-gate factor") in missing
    assert ("offcuts", "no landfill factor") in missing
    assert "grid factor of 2023 used for 2025" in inventory.notes


async def test_park_supply_at_recorded_production_gives_the_recorded_emissions(
    inventory: ParkInventory,
) -> None:
    """Demand = net output (A·q) makes the supply equal recorded production: B·q is then the
    sum of direct emissions, combustion and grid electricity, computed here by hand."""
    a, _, index = _independent()
    production = np.array([1000.0, 800.0, 100.0, 800.0, 2000.0])
    net = a @ production
    demand = {
        _index(inventory, key): float(net[index[col]])
        for key, col in [
            ("production:mill:coil", "coil"),
            ("production:stamper:parts", "parts"),
            ("production:stamper:scrap", "scrap"),
            ("production:assembler:module", "module"),
        ]
        if abs(net[index[col]]) > 1e-12
    }
    result = solve(inventory, demand)
    by_hand = (
        100 * DIESEL_NCV * 1e-6 * sum(DIESEL_EF[g] * GWP_AR6[g] for g in GWP_AR6)
        + 2000 * GRID_2023
        + 40
        + 0.5 * GWP_AR6["n2o"]
    )
    assert result.total == pytest.approx(by_hand, rel=1e-9)


async def test_scopes_from_the_stampers_view_match_the_block_decomposition(
    inventory: ParkInventory, session: AsyncSession
) -> None:
    """Scope 1 = the stamper's own emissions at its supply; scope 2 = grid generation for the
    electricity it takes; category 1 = the mill's chain (coil) solved without the stamper."""
    from lca.attribution import Scope, attribute

    a, characterised, index = _independent()
    stamper = inventory.activity("production:stamper:parts").enterprise_id
    assert stamper is not None
    demand_vector = np.zeros(5)
    demand_vector[index["parts"]], demand_vector[index["scrap"]] = 800.0, 100.0
    x = np.linalg.solve(a, demand_vector)
    inside = [index["parts"], index["scrap"]]
    outside = [index["coil"], index["module"], index["grid"]]
    y = -a[np.ix_(outside, inside)] @ x[inside]
    scope_1 = float(characterised[inside] @ x[inside])
    scope_2 = float(y[outside.index(index["grid"])] * GRID_2023)
    goods = y.copy()
    goods[outside.index(index["grid"])] = 0.0
    category_1 = float(characterised[outside] @ np.linalg.solve(a[np.ix_(outside, outside)], goods))

    result = attribute(
        inventory,
        enterprise_ids=frozenset({stamper}),
        demand={
            _index(inventory, "production:stamper:parts"): 800.0,
            _index(inventory, "production:stamper:scrap"): 100.0,
        },
    )
    scopes = result.by_scope
    assert scopes[Scope.SCOPE_1] == pytest.approx(scope_1, rel=1e-9)
    assert scopes[Scope.SCOPE_2] == pytest.approx(scope_2, rel=1e-9)
    assert scopes[Scope.SCOPE_3_CATEGORY_1] == pytest.approx(category_1, rel=1e-9)
    assert scopes[Scope.SCOPE_3_CATEGORY_3] == pytest.approx(0.0, abs=1e-9)  # grid has no upstream
    assert sum(scopes.values()) == pytest.approx(result.footprint.total, rel=1e-9)
    assert sum(result.by_enterprise.values()) == pytest.approx(result.footprint.total, rel=1e-9)
    assert set(result.by_enterprise) == {
        "mill",
        "outside the park",
    }  # the stamper emits nothing itself
    assert sum(result.by_gas.values()) == pytest.approx(result.footprint.total, rel=1e-9)
    assert set(result.by_gas) == {
        "Carbon dioxide, fossil",
        "Methane, fossil",
        "Dinitrogen monoxide",
    }


async def test_supply_chain_graph_follows_the_chain_with_cumulative_impacts(
    inventory: ParkInventory,
) -> None:
    from lca.graph import supply_chain_graph

    a, characterised, index = _independent()
    module = _index(inventory, "production:assembler:module")
    graph = supply_chain_graph(inventory, {module: 800.0}, cutoff=0.001, max_depth=6)
    demand = np.zeros(5)
    demand[index["module"]] = 800.0
    assert graph.total == pytest.approx(float(characterised @ np.linalg.solve(a, demand)), rel=1e-9)
    keys = {n.activity: n for n in graph.nodes}
    assert keys[module].supply == pytest.approx(800.0)
    assert keys[module].cumulative == pytest.approx(graph.total, rel=1e-9)
    edges = {(e.producer, e.consumer): e for e in graph.edges}
    parts = _index(inventory, "production:stamper:parts")
    module_key, parts_key = "production:assembler:module", "production:stamper:parts"
    assert edges[(module_key, "demand")].amount == pytest.approx(800.0)
    assert edges[(parts_key, module_key)].amount == pytest.approx(800.0)  # 1 kg per kg module
    # The coil into the parts: 1000·(8/9)/800 kg per kg of parts, for 800 kg of parts.
    assert edges[("production:mill:coil", parts_key)].amount == pytest.approx(
        1000 * 8 / 9, rel=1e-9
    )
    x = np.linalg.solve(a, demand)
    assert keys[parts].cumulative == pytest.approx(
        float(characterised @ np.linalg.solve(a, np.eye(5)[index["parts"]] * x[index["parts"]])),
        rel=1e-6,
    )
    shallow = supply_chain_graph(inventory, {module: 800.0}, cutoff=0.001, max_depth=1)
    assert max(n.depth for n in shallow.nodes) <= 1


@pytest.mark.parametrize(
    ("allocation", "shares", "f_parts"),
    [
        (Allocation.ECONOMIC, None, 8_000_000 / 8_200_000),  # invoiced values, VND
        (Allocation.MASS, {"parts": 0.25, "scrap": 0.75}, 0.25),  # user shares win
        (Allocation.MASS, None, 800 / 900),
    ],
)
async def test_allocation_by_value_or_user_shares(
    session: AsyncSession,
    caller: Caller,
    allocation: Allocation,
    shares: dict[str, float] | None,
    f_parts: float,
) -> None:
    park_id, nodes, materials = await _chain(
        session, caller, values={"parts": "8000000", "scrap": "200000"}
    )
    inventory = await build_inventory(
        session,
        caller=caller,
        park_id=park_id,
        period_start=JAN[0],
        period_end=JAN[1],
        allocation=allocation,
        shares=(
            {nodes["stamper"]: {materials[m]: v for m, v in shares.items()}} if shares else None
        ),
    )
    a, characterised, index = _independent(f_parts, 1 - f_parts)
    demand = np.zeros(5)
    demand[index["module"]] = 1.0
    expected = characterised @ np.linalg.solve(a, demand)
    result = solve(inventory, {_index(inventory, "production:assembler:module"): 1.0})
    assert result.total == pytest.approx(expected, rel=1e-9)


async def test_economic_allocation_without_values_falls_back_to_mass_and_says_so(
    inventory: ParkInventory, session: AsyncSession, caller: Caller
) -> None:
    economic = await build_inventory(
        session,
        caller=caller,
        park_id=inventory.park_id,
        period_start=JAN[0],
        period_end=JAN[1],
        allocation=Allocation.ECONOMIC,
    )
    stamper = inventory.activity("production:stamper:parts").enterprise_id
    assert stamper is not None
    assert economic.allocation[stamper] == inventory.allocation[stamper]
    assert any("economic allocation needs every output valued" in n for n in economic.notes)


# Hand-worked recycling allocation for the ore bought by the mill (2 kg per kg coil), per kg:
# Ev = 2.0, E_recycled = 0.5, E_recyclingEoL = 0.4, E*v = Ev, E_D = 0.1;
# A = 0.5, R1 = 0.3, R2 = 0.6, R3 = 0, Qsin/Qp = 0.9, Qsout/Qp = 0.8.
ORE_EMISSIONS = {"e_v": 2.0, "e_recycled": 0.5, "e_recycling_eol": 0.4, "e_disposal": 0.1}
ORE_PARAMETERS = {"a": 0.5, "r1": 0.3, "r2": 0.6, "qsin_qp": 0.9, "qsout_qp": 0.8}


# CFF: (1−0.3)·2.0 + 0.3·0.5·0.5 + 0.3·0.5·2.0·0.9 + 0.5·0.6·0.4 + (1−0.6)·0.1
#    = 1.4 + 0.075 + 0.27 + 0.12 + 0.04 = 1.905; credit −0.5·0.6·2.0·0.8 = −0.48
# Avoided burden: 2.0 + (1−0.6)·0.1 = 2.04; credit −0.6·(2.0 − 0.4) = −0.96
# CFF with the flow's own R1 = 1: 0 + 0.25 + 0.9 + 0.12 + 0.04 = 1.31; credit −0.48
@pytest.mark.parametrize(
    ("method", "flow_r1", "burden", "avoided"),
    [
        ("circular_footprint", None, 1.905, -0.48),
        ("avoided_burden", None, 2.04, -0.96),
        ("circular_footprint", 1.0, 1.31, -0.48),
        ("cut_off", None, 0.0, 0.0),
    ],
)
async def test_recycling_allocation_of_a_purchased_input(
    session: AsyncSession,
    caller: Caller,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    flow_r1: float | None,
    burden: float,
    avoided: float,
) -> None:
    import sqlalchemy as sa

    from lca import factors
    from lca.parameters import record_parameters
    from lca.recycling import CffParameters, MaterialEmissions, RecyclingMethod

    park_id, _, materials = await _chain(session, caller)
    monkeypatch.setattr(
        factors,
        "recycling_emissions",
        lambda code: MaterialEmissions(**ORE_EMISSIONS) if code == "ore" else None,
    )
    await record_parameters(
        session, CffParameters(**ORE_PARAMETERS), caller=caller, material_id=materials["ore"]
    )
    if flow_r1 is not None:
        ore_flow = (
            await session.execute(
                sa.text("SELECT id FROM flow WHERE material_id = :m"), {"m": materials["ore"]}
            )
        ).scalar_one()
        await record_parameters(
            session,
            CffParameters(**(ORE_PARAMETERS | {"r1": flow_r1})),
            caller=caller,
            material_id=materials["ore"],
            flow_id=ore_flow,
        )
    inventory = await build_inventory(
        session,
        caller=caller,
        park_id=park_id,
        period_start=JAN[0],
        period_end=JAN[1],
        recycling=RecyclingMethod(method),
    )
    a, characterised, index = _independent()
    demand = np.zeros(5)
    demand[index["module"]] = 1.0
    x = np.linalg.solve(a, demand)
    ore_per_module = 2.0 * x[index["coil"]]  # 2000 kg ore for 1000 kg coil
    result = solve(inventory, {_index(inventory, "production:assembler:module"): 1.0})
    assert result.total == pytest.approx(characterised @ x + burden * ore_per_module, rel=1e-9)
    assert result.avoided == pytest.approx(avoided * ore_per_module, rel=1e-9, abs=1e-15)
    missing = {(m.material_code, m.reason) for m in inventory.missing}
    assert (("ore", "no cradle-to-gate factor") in missing) is (method == "cut_off")
