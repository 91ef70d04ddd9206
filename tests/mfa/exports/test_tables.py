"""Tidy tables against figures computed here: sums of the sample park's CSV files, and a small
footprint chain worked by hand."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from factories import make_footprint_world
from sqlalchemy.ext.asyncio import AsyncSession

from lca.footprint import FootprintCache
from mfa.access import Caller
from mfa.db import create_async, session_factory, transaction
from mfa.errors import NotFoundError, PeriodError
from mfa.exports.tables import (
    LEADING,
    ExportKind,
    TableRequest,
    balances_table,
    export_table,
    flows_table,
    footprints_table,
    indicators_table,
    resolve_park,
)
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

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "datasets" / "sample_park"
PARK = "amata-dn-synthetic"
JAN = (date(2025, 1, 1), date(2025, 1, 31))
# Units of the sample CSVs whose conversion to the canonical unit is a plain factor.
TO_CANONICAL = {"kg": 1.0, "t": 1000.0, "kWh": 1.0, "MWh": 1000.0, "m3": 1.0}
GWP_AR6_CH4_FOSSIL = 29.8  # IPCC AR6 WG1 Table 7.15, fossil methane (REFERENCE.md §4)


async def _thread(make):  # type: ignore[no-untyped-def]
    return make()


@pytest.fixture
async def sample_session(sample_database_url: str) -> AsyncIterator[AsyncSession]:
    engine = create_async(sample_database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            yield session
    finally:
        await engine.dispose()


def _january_transfers() -> dict[tuple[str, str, str], float | None]:
    """(source, target, material) → canonical quantity of its first January report (the
    flow; later reports of the same transfer are the counterparty's confirmations), or None
    when its unit needs a density or heating value."""
    found: dict[tuple[str, str, str], float | None] = {}
    with (SAMPLE / "flows.csv").open() as handle:
        for row in csv.DictReader(handle):
            if row["period_start"] != "2025-01-01":
                continue
            key = (row["source"], row["target"], row["material"])
            if key not in found:
                factor = TO_CANONICAL.get(row["unit"])
                found[key] = None if factor is None else float(row["quantity"]) * factor
    return found


async def test_flow_rows_sum_to_the_sample_reports(
    sample_session: AsyncSession, caller: Caller
) -> None:
    park = await resolve_park(sample_session, PARK, caller=caller, start=JAN[0], end=JAN[1])
    table = await flows_table(sample_session, caller=caller, park=park, start=JAN[0], end=JAN[1])

    assert list(table.columns[: len(LEADING)]) == list(LEADING)
    quantities = table[table["indicator"] == "quantity"]
    assert quantities["flow_id"].is_unique  # one quantity row per ledger entry
    exported = quantities.groupby(["source", "target", "material_code"])["value"].sum()
    expected = _january_transfers()
    assert set(exported.index) == set(expected)
    compared = 0
    for key, value in expected.items():
        if value is not None:
            assert exported[key] == pytest.approx(value, rel=1e-12), key
            compared += 1
    assert compared > 150
    assert (quantities["period_start"] >= JAN[0]).all()
    assert (quantities["period_end"] <= JAN[1]).all()


async def test_balance_lines_match_sums_and_stock_readings_of_the_sample(
    sample_session: AsyncSession, caller: Caller
) -> None:
    park = await resolve_park(sample_session, PARK, caller=caller, start=JAN[0], end=JAN[1])
    table = await balances_table(
        sample_session, caller=caller, park=park, start=JAN[0], end=JAN[1], tolerance=0.02
    )
    inputs: dict[tuple[str, str], float] = defaultdict(float)
    outputs: dict[tuple[str, str], float] = defaultdict(float)
    unknown: set[tuple[str, str]] = set()
    for (source, target, material), value in _january_transfers().items():
        for key, sums in (((target, material), inputs), ((source, material), outputs)):
            if value is None:
                unknown.add(key)
            else:
                sums[key] += value
    lines = table[table["material_code"].notna()].set_index(
        ["entity_code", "material_code", "indicator"]
    )["value"]
    compared = 0
    for (enterprise, material), value in inputs.items():
        if (enterprise, material, "inputs") in lines.index and (
            enterprise,
            material,
        ) not in unknown:
            assert lines[(enterprise, material, "inputs")] == pytest.approx(value, rel=1e-12)
            compared += 1
    for (enterprise, material), value in outputs.items():
        if (enterprise, material, "outputs") in lines.index and (
            enterprise,
            material,
        ) not in unknown:
            assert lines[(enterprise, material, "outputs")] == pytest.approx(value, rel=1e-12)
            compared += 1
    assert compared > 150

    opening, closing = 434.410 * 1000, 333.132 * 1000  # stocks.csv, lt-auto-body steel-coil
    coil = ("lt-auto-body", "steel-coil")
    assert lines[(*coil, "opening_stock")] == pytest.approx(opening)
    assert lines[(*coil, "closing_stock")] == pytest.approx(closing)
    assert lines[(*coil, "stock_change")] == pytest.approx(closing - opening)
    net = inputs[coil] - outputs.get(coil, 0.0) - (closing - opening)
    assert lines[(*coil, "net")] == pytest.approx(net)


async def test_unknown_stock_is_an_empty_value_with_a_note_not_a_zero(
    session: AsyncSession, caller: Caller
) -> None:
    await make_footprint_world(session, caller)
    park = await resolve_park(session, "fp", caller=caller, start=JAN[0], end=JAN[1])
    table = await balances_table(
        session, caller=caller, park=park, start=JAN[0], end=JAN[1], tolerance=0.02
    )
    row = table[
        (table["entity_code"] == "stamper")
        & (table["material_code"] == "coil")
        & (table["indicator"] == "stock_change")
    ].iloc[0]
    assert math.isnan(row["value"])
    assert "unknown" in row["note"]
    inputs = table[
        (table["entity_code"] == "stamper")
        & (table["material_code"] == "coil")
        & (table["indicator"] == "inputs")
    ]
    assert inputs["value"].tolist() == [1000.0]


def _grid_factor(year: int) -> float:
    """kg CO2/kWh of the latest year ≤ ``year`` in datasets/factors/grid_vn.csv."""
    with (ROOT / "datasets" / "factors" / "grid_vn.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["year"]) <= year]
    return float(max(rows, key=lambda r: int(r["year"]))["factor_t_co2_per_mwh"])


def _value(table: pd.DataFrame, entity: str, material: str | None, indicator: str) -> float:
    chosen = table[(table["entity_code"] == entity) & (table["indicator"] == indicator)]
    if material is not None:
        chosen = chosen[chosen["material_code"] == material]
    (value,) = chosen["value"].tolist()
    return float(value)


async def test_product_footprints_match_the_chain_worked_by_hand(
    session: AsyncSession, caller: Caller
) -> None:
    await make_footprint_world(session, caller)
    park = await resolve_park(session, "fp", caller=caller, start=JAN[0], end=JAN[1])
    table = await footprints_table(
        session,
        caller=caller,
        park=park,
        start=JAN[0],
        end=JAN[1],
        cache=FootprintCache(),
        run=_thread,
    )
    g = _grid_factor(2025)
    ch4 = 0.5 * GWP_AR6_CH4_FOSSIL  # the mill's reported methane, kg CO2e
    coil = (2000 * g + ch4) / 1000  # per kg of coil; biogenic CO2 counts 0
    parts = (1000 * g + 1000 * coil) / 800  # per kg of parts
    assert _value(table, "mill", "coil", "gwp100") == pytest.approx(coil, rel=1e-9)
    assert _value(table, "stamper", "parts", "gwp100") == pytest.approx(parts, rel=1e-9)
    assert _value(table, "stamper", "parts", "gwp100_fossil") == pytest.approx(parts, rel=1e-9)
    assert _value(table, "stamper", "parts", "gwp100_biogenic") == 0.0
    assert _value(table, "stamper", "parts", "output") == 800.0
    # scope 2: the stamper's own electricity; scope 3.1: the coil it buys from the mill
    scope_2 = _value(table, "stamper", "parts", "gwp100_scope_2")
    scope_31 = _value(table, "stamper", "parts", "gwp100_scope_3_category_1")
    assert scope_2 == pytest.approx(1000 * g / 800, rel=1e-9)
    assert scope_31 == pytest.approx(1000 * coil / 800, rel=1e-9)
    primary = ch4 / 1000 * 1000 / 800  # reported methane per kg coil × kg coil per kg parts
    share = _value(table, "stamper", "parts", "primary_data_share")
    assert share == pytest.approx(100 * primary / parts, rel=1e-9)
    # the park: everything emitted to make what left it
    assert _value(table, "fp", None, "gwp100") == pytest.approx(3000 * g + ch4, rel=1e-9)
    units = table.set_index(["entity_code", "indicator"])["unit"]
    assert units[("stamper", "gwp100")] == "kg CO2e/kg"
    assert (table["indicator"] != "input_without_factor").all()


async def test_missing_factors_are_listed_beside_the_products_they_leave_out(
    session: AsyncSession, caller: Caller
) -> None:
    await make_footprint_world(session, caller, ore_kg="2000")
    park = await resolve_park(session, "fp", caller=caller, start=JAN[0], end=JAN[1])
    table = await footprints_table(
        session,
        caller=caller,
        park=park,
        start=JAN[0],
        end=JAN[1],
        cache=FootprintCache(),
        run=_thread,
    )
    missing = table[table["indicator"] == "input_without_factor"]
    # the park, the mill's coil and the stamper's parts (made of coil) all rest on the ore
    assert sorted(
        zip(missing["entity_code"], missing["material_code"].fillna(""), strict=True)
    ) == [
        ("fp", ""),
        ("mill", "coil"),
        ("stamper", "parts"),
    ]
    assert set(missing["input_code"]) == {"ore"}
    assert set(missing["value"]) == {2000.0}
    assert set(missing["unit"]) == {"kg"}
    assert all("no cradle-to-gate factor" in note for note in missing["note"])
    parts = table[(table["entity_code"] == "stamper") & (table["indicator"] == "gwp100")]
    assert "without factor" in parts["note"].iloc[0]


async def test_a_bad_park_or_period_is_refused_naming_the_argument(
    session: AsyncSession, caller: Caller
) -> None:
    await make_footprint_world(session, caller)
    with pytest.raises(NotFoundError) as missing:
        await export_table(
            session,
            TableRequest(ExportKind.FLOWS, "nowhere", *JAN),
            caller=caller,
            tolerance=0.02,
            cache=FootprintCache(),
            run=_thread,
        )
    assert missing.value.field == ("park",)
    with pytest.raises(PeriodError):
        await export_table(
            session,
            TableRequest(ExportKind.BALANCES, "fp", JAN[1], JAN[0]),
            caller=caller,
            tolerance=0.02,
            cache=FootprintCache(),
            run=_thread,
        )


async def test_indicator_rows_match_the_circular_transition_ratios_worked_by_hand(
    session: AsyncSession, caller: Caller
) -> None:
    """The mill buys 300 kg of recycled steel and 700 kg of ore and sells 1000 kg of coil
    outside: CTI circular inflow 300/1000; the coil has no recovery data, so its circular
    outflow is 0 (and an assumption row says so); material circularity
    (1000·0.3 + 1000·0) / 2000."""
    park = await create_park(
        session, ParkCreate(code="cti", name="CTI park", country="VN"), caller=caller
    )
    assert park.id is not None
    nodes = {}
    for code, kind, isic in [
        ("supplier", NodeKind.SUPPLIER, None),
        ("mill", NodeKind.ENTERPRISE, "2410"),
        ("customer", NodeKind.CUSTOMER, None),
    ]:
        node = await create_node(
            session,
            NodeCreate(park_id=park.id, name=code, kind=kind, code=code, isic_code=isic),
            caller=caller,
        )
        nodes[code] = node.id
    materials = {}
    for code, secondary in [("recycled-steel", True), ("ore", False), ("coil", False)]:
        material = await create_material(
            session,
            MaterialCreate(
                code=code,
                name=code,
                kind=MaterialKind.PRODUCT,
                dimension=Dimension.MASS,
                secondary=secondary,
            ),
            caller=caller,
        )
        materials[code] = material.id
    flows = [
        ("supplier", "mill", "recycled-steel", "300"),
        ("supplier", "mill", "ore", "0.7"),
        ("mill", "customer", "coil", "1"),
    ]
    await record_flows(
        session,
        [
            FlowCreate(
                source_id=nodes[s],
                target_id=nodes[t],
                material_id=materials[m],
                quantity=q,
                unit="kg" if m == "recycled-steel" else "t",
                period_start=JAN[0],
                period_end=JAN[1],
            )
            for s, t, m, q in flows
        ],
        caller=caller,
    )
    row = await resolve_park(session, "cti", caller=caller, start=JAN[0], end=JAN[1])

    table = await indicators_table(session, caller=caller, park=row, start=JAN[0], end=JAN[1])

    at_park = table[table["entity_kind"] == "park"].set_index("indicator")
    assert at_park.loc["circular_inflow", "value"] == pytest.approx(300 / 1000)
    assert at_park.loc["circular_inflow", "numerator"] == pytest.approx(300)
    assert at_park.loc["circular_inflow", "denominator"] == pytest.approx(1000)
    assert at_park.loc["circular_inflow", "basis_unit"] == "kg"
    assert at_park.loc["circular_inflow", "flow_count"] == 2
    assert at_park.loc["circular_outflow", "value"] == 0.0
    assert at_park.loc["material_circularity", "value"] == pytest.approx(
        (1000 * 0.3 + 1000 * 0.0) / 2000
    )
    assert at_park.loc["circular_inflow", "unit"] == "1"
    water = at_park.loc["water_circularity"]
    assert math.isnan(water["value"])
    assert "nothing flowed" in water["note"]
    assumptions = table[table["indicator"] == "assumption"]["note"].tolist()
    assert any("coil" in text for text in assumptions)
