"""The eco-industrial park scorecard: criteria as data, each judged met, not met or not judged.

Expected values are counted by hand from the network built here, or from the sample park's
planted links (datasets/sample_park/planted.json), never from the service's output.
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
from mfa.db import create_async, session_factory
from mfa.errors import MfaError, NotFoundError
from mfa.ledger import record_flows
from mfa.models import MaterialKind, NodeKind
from mfa.registry import MaterialCreate, NodeCreate, create_material, create_node
from mfa.scorecard import Criterion, Verdict, criteria, judge, scorecard
from mfa.units import Dimension

DATASETS = Path(__file__).resolve().parents[2] / "datasets"


def _by_id() -> dict[str, Criterion]:
    return {c.id: c for c in criteria()}


def test_decree_criteria_carry_the_thresholds_of_the_domain_reference() -> None:
    found = _by_id()
    # REFERENCE.md §2, Decree 82/2018: ≥ 1 symbiosis link with ≥ 10% of enterprises, ≥ 20%
    # applying cleaner production, ≥ 25% of land shared.
    assert (found["vn-symbiosis-link"].comparator, found["vn-symbiosis-link"].threshold) == (
        ">=",
        1,
    )
    assert found["vn-symbiosis-share"].threshold == 0.10
    assert found["vn-cleaner-production"].threshold == 0.20
    assert found["vn-shared-land"].threshold == 0.25
    assert all("[verify" in c.source for c in found.values() if c.category == "vn_decree")
    topics = {c.topic for c in found.values() if c.category == "environmental"}
    assert topics == {
        "environmental management and monitoring",
        "energy",
        "water",
        "waste and material use",
        "climate change",
        "natural environment and climate resilience",
    }
    assert all(c.threshold is None for c in found.values() if c.category == "environmental")


def test_criteria_file_has_unique_ids_and_sources() -> None:
    with (DATASETS / "eip_criteria.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len({r["id"] for r in rows}) == len(rows) == len(criteria())
    assert all(r["source"].strip() for r in rows)


@pytest.mark.parametrize(
    ("comparator", "value", "threshold", "verdict"),
    [
        (">=", 0.1, 0.1, Verdict.MET),
        (">=", 0.09, 0.1, Verdict.NOT_MET),
        (">", 0.1, 0.1, Verdict.NOT_MET),
        ("<=", 0.3, 0.2, Verdict.NOT_MET),
        ("<", 0.1, 0.2, Verdict.MET),
        ("=", 1.0, 1.0, Verdict.MET),
        (">=", None, 0.1, Verdict.CANNOT_JUDGE),
        (">=", 0.5, None, Verdict.CANNOT_JUDGE),
    ],
)
def test_judge_compares_value_and_threshold_or_cannot(
    comparator: str, value: float | None, threshold: float | None, verdict: Verdict
) -> None:
    criterion = Criterion("x", "environmental", "t", "i", comparator, None, "u", "s")
    assert judge(criterion, value, threshold) is verdict


async def _park(session: AsyncSession, caller: Caller) -> World:
    """Five enterprises: mill, stamper, assembler (factories), a collector, a power plant.

    Links in January: scrap stamper → mill, solar power plant → mill. Not links: coil sold
    mill → stamper (an ordinary product), scrap mill → collector (a waste service).
    """
    world = await make_world(session, caller)
    solar = await create_material(
        session,
        MaterialCreate(
            code="solar",
            name="Solar",
            kind=MaterialKind.ENERGY,
            dimension=Dimension.ENERGY,
            renewable=True,
        ),
        caller=caller,
    )
    assert solar.id is not None
    world.materials["solar"] = solar.id
    for code, isic in (("collector", "3811"), ("power", "3510")):
        node = await create_node(
            session,
            NodeCreate(
                park_id=world.park, code=code, name=code, kind=NodeKind.ENTERPRISE, isic_code=isic
            ),
            caller=caller,
        )
        assert node.id is not None
        world.nodes[code] = node.id
    w = world.flow
    await record_flows(
        session,
        [
            w("stamper", "mill", "steel-scrap", 200, reporter="stamper"),
            w("power", "mill", "solar", 500, unit="kWh", reporter="power"),
            w("mill", "stamper", "steel-coil", 500, reporter="mill"),
            w("mill", "collector", "steel-scrap", 20, reporter="mill"),
            w("grid", "mill", "electricity", 1500, unit="kWh"),
            w("mill", "landfill", "steel-scrap", 60),
        ],
        caller=caller,
    )
    return world


async def test_scorecard_judges_decree_criteria_from_the_links(
    session: AsyncSession, caller: Caller
) -> None:
    world = await _park(session, caller)
    card = await scorecard(
        session, caller=caller, park_id=world.park, period_start=JAN[0], period_end=JAN[1]
    )
    found = {e.criterion.id: e for e in card.evaluations}
    assert {(k.source_id, k.target_id) for k in card.participation.links} == {
        (world.nodes["stamper"], world.nodes["mill"]),
        (world.nodes["power"], world.nodes["mill"]),
    }
    assert (found["vn-symbiosis-link"].value, found["vn-symbiosis-link"].verdict) == (
        2,
        Verdict.MET,
    )
    # participants: stamper, mill, power = 3 of 5 enterprises
    assert found["vn-symbiosis-share"].value == pytest.approx(3 / 5)
    assert found["vn-symbiosis-share"].verdict is Verdict.MET
    cleaner = found["vn-cleaner-production"]
    assert cleaner.verdict is Verdict.CANNOT_JUDGE
    assert cleaner.missing is not None
    assert "cleaner production is not recorded" in cleaner.missing
    # monitoring: enterprises with flows = mill, stamper, collector, power = 4 of 5
    monitoring = found["ifeip-monitoring"]
    assert monitoring.value == pytest.approx(4 / 5)
    assert monitoring.verdict is Verdict.CANNOT_JUDGE
    assert monitoring.missing == "no threshold: the park must set one"
    # waste leaving the mill and stamper: 200 recycled by the mill, 20 collected (a
    # pass-through inside the park, left out), 60 landfilled: landfilled share 60 / 260
    assert found["ifeip-waste-landfill"].value == pytest.approx(60 / 260)


async def test_thresholds_set_by_the_park_replace_the_files(
    session: AsyncSession, caller: Caller
) -> None:
    world = await _park(session, caller)
    card = await scorecard(
        session,
        caller=caller,
        park_id=world.park,
        period_start=JAN[0],
        period_end=JAN[1],
        thresholds={"ifeip-energy": 0.5, "vn-symbiosis-share": 0.8},
    )
    found = {e.criterion.id: e for e in card.evaluations}
    energy = found["ifeip-energy"]
    assert energy.value == pytest.approx(500 / (500 + 1500))
    assert (energy.threshold, energy.threshold_set_by_park, energy.verdict) == (
        0.5,
        True,
        Verdict.NOT_MET,
    )
    share = found["vn-symbiosis-share"]
    assert (share.threshold, share.verdict) == (0.8, Verdict.NOT_MET)  # 0.6 < 0.8
    assert found["vn-symbiosis-link"].threshold_set_by_park is False


async def test_a_period_without_flows_meets_no_decree_criterion(
    session: AsyncSession, caller: Caller
) -> None:
    world = await _park(session, caller)
    card = await scorecard(
        session, caller=caller, park_id=world.park, period_start=FEB[0], period_end=FEB[1]
    )
    found = {e.criterion.id: e for e in card.evaluations}
    assert (found["vn-symbiosis-link"].value, found["vn-symbiosis-link"].verdict) == (
        0,
        Verdict.NOT_MET,
    )
    assert found["vn-symbiosis-share"].value == 0
    energy = found["ifeip-energy"]
    assert energy.value is None
    assert energy.missing is not None
    assert energy.missing.startswith("no flows in the period")


async def test_unknown_criteria_and_bad_thresholds_are_refused(
    session: AsyncSession, caller: Caller
) -> None:
    world = await _park(session, caller)
    with pytest.raises(NotFoundError, match="no criterion 'nope'"):
        await scorecard(
            session,
            caller=caller,
            park_id=world.park,
            period_start=JAN[0],
            period_end=JAN[1],
            thresholds={"nope": 1.0},
        )
    with pytest.raises(MfaError, match="finite"):
        await scorecard(
            session,
            caller=caller,
            park_id=world.park,
            period_start=JAN[0],
            period_end=JAN[1],
            thresholds={"ifeip-energy": float("nan")},
        )
    with pytest.raises(NotFoundError, match="no park"):
        await scorecard(
            session, caller=caller, park_id=9999, period_start=JAN[0], period_end=JAN[1]
        )


def _planted() -> tuple[set[tuple[str, str, str]], int]:
    planted = json.loads((DATASETS / "sample_park/planted.json").read_text())
    links = {(k["source"], k["target"], k["material"]) for k in planted["symbiosis_links"]}
    with (DATASETS / "sample_park/nodes.csv").open() as handle:
        enterprises = sum(n["kind"] == "enterprise" for n in csv.DictReader(handle))
    return links, enterprises


async def test_sample_park_links_are_exactly_the_planted_ones(sample_database_url: str) -> None:
    planted, enterprises = _planted()
    engine = create_async(sample_database_url)
    try:
        async with session_factory(engine)() as session:
            park_id = (await session.execute(sa.text("SELECT id FROM park"))).scalar_one()
            card = await scorecard(
                session,
                caller=SYSTEM,
                park_id=park_id,
                period_start=date(2025, 1, 1),
                period_end=date(2025, 12, 31),
            )
            codes: dict[int, str] = dict(
                (await session.execute(sa.text("SELECT id, code FROM park_node"))).all()
            )
            materials: dict[int, str] = dict(
                (await session.execute(sa.text("SELECT id, code FROM material"))).all()
            )
    finally:
        await engine.dispose()
    found = {
        (codes[k.source_id], codes[k.target_id], materials[k.material_id])
        for k in card.participation.links
    }
    assert found == planted
    participants = {end for link in planted for end in link[:2]}
    share = {e.criterion.id: e for e in card.evaluations}["vn-symbiosis-share"]
    assert share.value == pytest.approx(len(participants) / enterprises)
    assert share.verdict is Verdict.MET
