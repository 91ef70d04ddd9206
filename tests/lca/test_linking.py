"""lca.linking: a small Brightway project exported as the park's background and solved with it.

The project is built here, in a temporary ``BRIGHTWAY2_DIR``: a biosphere database with fossil
CO2 and CH4, and a background ``bg`` with a loop (steel needs electricity, electricity needs a
little steel and coal). The combined solve is checked against a dense NumPy solve of the same
numbers (bw2data stores amounts as float32; the dense solve rounds them the same way), and
``_park_package`` / ``_characterisation_package`` are the recipe for ``lca.model`` to put the
park in front of a linked background.
"""

from __future__ import annotations

import gc
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import bw_processing as bwp
import numpy as np
import pytest

from lca.characterisation import CO2_FOSSIL, CO2E_AGGREGATED
from lca.linking import (
    PARK_ID_OFFSET,
    BackgroundKey,
    LinkedBackground,
    UnknownActivityError,
    UnknownDatabaseError,
    UnknownProjectError,
    activity_id,
    export_background,
    park_ids,
)

CH4_FOSSIL = "0795345f-c7ae-410c-ad25-1845784c75f5"
GWP = {CO2_FOSSIL: 1.0, CH4_FOSSIL: 29.8, CO2E_AGGREGATED: 1.0}  # kg CO2e per kg (AR6)
RTOL = 1e-9

# Per unit of output: technosphere inputs (units) and emissions (kg), in matrix order below.
BACKGROUND = ("steel", "electricity", "coal")
INPUTS = {"steel": {"electricity": 0.5}, "electricity": {"steel": 0.01, "coal": 0.4}, "coal": {}}
EMISSIONS = {
    "steel": {CO2_FOSSIL: 1.8},
    "electricity": {CO2_FOSSIL: 0.9, CH4_FOSSIL: 0.002},
    "coal": {CH4_FOSSIL: 0.05},
}
# The park activity: buys 2 kg of steel, emits 1 kg of fossil CO2 and 0.5 kg CO2e reported
# only as an aggregate (a flow the project does not have).
PARK_STEEL, PARK_CO2, PARK_CO2E = 2.0, 1.0, 0.5


# --- the project -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    """A project made for one test, and the ids bw2data gave its nodes."""

    name: str
    directory: Path
    activity_ids: dict[BackgroundKey, int]
    flow_ids: dict[str, int]


@pytest.fixture(scope="module")
def bw2data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """bw2data rooted in a temporary folder for this module, then back where it was.

    bw2data reads ``BRIGHTWAY2_DIR`` once, at import: when no earlier test imported it, it is
    imported here with the variable pointing at the temporary folder; when one did, its
    projects are moved there with ``change_base_directories``, as bw2data's own tests do.
    Either way nothing is written in the user's home or in ``var/brightway``.

    bw2data runs ``gc.collect()`` twice on every project switch, about 0.5 s each in a test
    process; freezing the objects that exist already makes those collections scan only what
    the tests create.
    """
    base = tmp_path_factory.mktemp("brightway")
    with pytest.MonkeyPatch.context() as env:
        if "bw2data" not in sys.modules:
            env.setenv("BRIGHTWAY2_DIR", str(base))
        import bw2data as bd

        gc.collect()
        gc.freeze()
        before = (bd.projects.dir.parent, bd.projects.logs_dir.parent, bd.projects.current)
        moved = before[0] != base
        if moved:
            (base / "logs").mkdir()
            bd.projects.change_base_directories(
                base, base_logs_dir=base / "logs", project_name="default", update=False
            )
        try:
            yield bd
        finally:
            if moved:
                bd.projects.change_base_directories(
                    before[0], base_logs_dir=before[1], project_name=before[2], update=False
                )
            gc.unfreeze()


def _write_databases(bd: Any) -> None:
    bd.Database("bio").write(
        {
            ("bio", CO2_FOSSIL): {"name": "Carbon dioxide, fossil", "type": "emission"},
            ("bio", CH4_FOSSIL): {"name": "Methane, fossil", "type": "emission"},
        },
        searchable=False,
    )
    bd.Database("bg").write(
        {
            ("bg", code): {
                "name": code,
                "unit": "kWh" if code == "electricity" else "kg",
                "location": "GLO",
                "exchanges": [
                    *(
                        {"input": ("bg", other), "amount": amount, "type": "technosphere"}
                        for other, amount in INPUTS[code].items()
                    ),
                    *(
                        {"input": ("bio", flow), "amount": amount, "type": "biosphere"}
                        for flow, amount in EMISSIONS[code].items()
                    ),
                ],
            }
            for code in BACKGROUND
        },
        searchable=False,
    )


@pytest.fixture
def project(bw2data: Any) -> Iterator[Project]:
    """A fresh project holding ``bio`` and ``bg``; "default" is current during the test."""
    name = f"linking-{uuid.uuid4().hex[:8]}"
    bw2data.projects.set_current(name, update=False)
    _write_databases(bw2data)
    made = Project(
        name,
        bw2data.projects.dir,
        {BackgroundKey("bg", code): bw2data.get_id(("bg", code)) for code in BACKGROUND},
        {flow: bw2data.get_id(("bio", flow)) for flow in (CO2_FOSSIL, CH4_FOSSIL)},
    )
    bw2data.projects.set_current("default", update=False)
    yield made
    bw2data.projects.delete_project(name, delete_dir=True)


# --- the recipe for the park side ------------------------------------------------------------


def _indices(pairs: list[tuple[int, int]]) -> np.ndarray:
    indices = np.empty(len(pairs), dtype=bwp.INDICES_DTYPE)
    indices["row"] = [row for row, _ in pairs]
    indices["col"] = [col for _, col in pairs]
    return indices


def _park_package(*, park_id: int, steel_id: int, co2_id: int, co2e_id: int) -> bwp.DatapackageBase:
    """One park activity, numbered ``park_id``, as ``lca.model.datapackage`` builds it: its
    production on the diagonal, the linked purchase as a flipped entry in the background
    product's row, its emissions in the project's biosphere rows (or a park row)."""
    package = bwp.create_datapackage(name="park", sum_intra_duplicates=True)
    package.add_persistent_vector(
        matrix="technosphere_matrix",
        name="park-technosphere",
        indices_array=_indices([(park_id, park_id), (steel_id, park_id)]),
        data_array=np.array([1.0, PARK_STEEL]),
        flip_array=np.array([False, True]),
    )
    package.add_persistent_vector(
        matrix="biosphere_matrix",
        name="park-biosphere",
        indices_array=_indices([(co2_id, park_id), (co2e_id, park_id)]),
        data_array=np.array([PARK_CO2, PARK_CO2E]),
    )
    return package


def _characterisation_package(flow_ids: Mapping[str, int]) -> bwp.DatapackageBase:
    """C[g, g] = GWP100 of the flow with id g, for every flow: the background's as well."""
    characterised = [(flow_ids[uuid_], factor) for uuid_, factor in GWP.items()]
    package = bwp.create_datapackage(name="park-characterisation")
    package.add_persistent_vector(
        matrix="characterization_matrix",
        name="park-characterization",
        indices_array=_indices([(g, g) for g, _ in characterised]),
        data_array=np.array([factor for _, factor in characterised]),
    )
    return package


def _dense_score(stored: Callable[[float], float]) -> tuple[float, np.ndarray]:
    """h = cᵀ B A⁻¹ d and the supply, with A and B written out by hand, park first;
    ``stored`` is what becomes of a background amount in bw2data's matrices."""
    order = ("park", *BACKGROUND)
    flows = (CO2_FOSSIL, CH4_FOSSIL, CO2E_AGGREGATED)
    A = np.eye(len(order))
    B = np.zeros((len(flows), len(order)))
    A[order.index("steel"), 0] = -PARK_STEEL
    B[0, 0], B[2, 0] = PARK_CO2, PARK_CO2E
    for j, code in enumerate(BACKGROUND, start=1):
        for other, amount in INPUTS[code].items():
            A[order.index(other), j] = -stored(amount)
        for flow, amount in EMISSIONS[code].items():
            B[flows.index(flow), j] = stored(amount)
    c = np.array([GWP[flow] for flow in flows])
    supply = np.linalg.solve(A, np.eye(len(order))[0])
    return float(c @ B @ supply), supply


def _float32(amount: float) -> float:
    """bw_processing stores the amounts bw2data processes as float32 (7 significant digits)."""
    return float(np.float32(amount))


# --- tests -----------------------------------------------------------------------------------


def test_export_gives_bw2datas_ids_and_restores_the_current_project(
    bw2data: Any, project: Project
) -> None:
    background = export_background(project.name, ["bg"])

    assert bw2data.projects.current == "default"
    assert background.project == project.name
    assert background.databases == ("bg", "bio")  # the biosphere comes as a dependency
    assert len(background.datapackages) == 2
    assert dict(background.activity_ids) == project.activity_ids
    assert dict(background.biosphere_ids) == project.flow_ids
    steel = BackgroundKey("bg", "steel")
    assert activity_id(background, steel) == project.activity_ids[steel]


def test_park_and_background_solve_as_one_system(bw2data: Any, project: Project) -> None:
    background = export_background(project.name, ["bg"])
    for path in (project.directory / "processed").iterdir():
        path.unlink()  # the solve must read nothing more from the project

    park_id, co2e_id = park_ids(background, 2)
    park = _park_package(
        park_id=park_id,
        steel_id=activity_id(background, BackgroundKey("bg", "steel")),
        co2_id=background.biosphere_ids[CO2_FOSSIL],
        co2e_id=co2e_id,
    )
    cf = _characterisation_package({**background.biosphere_ids, CO2E_AGGREGATED: co2e_id})
    import bw2calc  # imports bw2data: not at collection

    calculation = bw2calc.LCA({park_id: 1}, data_objs=[park, *background.datapackages, cf])
    calculation.lci()
    calculation.lcia()

    expected, supply = _dense_score(_float32)
    assert calculation.score == pytest.approx(expected, rel=RTOL)
    assert calculation.score == pytest.approx(_dense_score(float)[0], rel=1e-6)
    columns = [park_id, *(project.activity_ids[BackgroundKey("bg", c)] for c in BACKGROUND)]
    found = [calculation.supply_array[calculation.dicts.activity[j]] for j in columns]
    np.testing.assert_allclose(found, supply, rtol=RTOL)
    from lca.solver import solve  # imports bw2calc, hence bw2data: not at collection

    same = solve([park, *background.datapackages, cf], {park_id: 1})
    assert same.score == pytest.approx(expected, rel=RTOL)


def test_export_is_reused_until_the_project_changes(bw2data: Any, project: Project) -> None:
    first = export_background(project.name, ["bg"])

    assert export_background(project.name, ["bg", "bg"]) is first

    bw2data.projects.set_current(project.name, update=False)
    bw2data.Database("bg").new_node(
        code="aluminium", name="aluminium", unit="kg", type="processwithreferenceproduct"
    ).save()
    bw2data.projects.set_current("default", update=False)
    second = export_background(project.name, ["bg"])

    assert second is not first
    assert second.fingerprint != first.fingerprint
    assert BackgroundKey("bg", "aluminium") in second.activity_ids
    assert export_background(project.name, ["bg"]) is second


def test_an_unknown_project_is_refused_by_name_and_not_created(bw2data: Any) -> None:
    with pytest.raises(UnknownProjectError, match="'no-such-project'"):
        export_background("no-such-project", ["bg"])

    assert "no-such-project" not in bw2data.projects
    assert bw2data.projects.current == "default"


def test_an_unknown_database_is_refused_by_name(bw2data: Any, project: Project) -> None:
    with pytest.raises(UnknownDatabaseError, match=rf"'ecoinvent'.*'{project.name}'"):
        export_background(project.name, ["bg", "ecoinvent"])

    assert bw2data.projects.current == "default"


def _background(activity_ids: dict[BackgroundKey, int]) -> LinkedBackground:
    return LinkedBackground(
        project="p",
        databases=("bg", "bio"),
        datapackages=(),
        activity_ids=MappingProxyType(activity_ids),
        biosphere_ids=MappingProxyType({CO2_FOSSIL: 7}),
        fingerprint=(),
        exported_at=datetime.now(UTC),
    )


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (BackgroundKey("bg", "gold"), r"'bg'.*has no technosphere node 'gold'"),
        (BackgroundKey("ecoinvent", "steel"), r"'ecoinvent' is not exported"),
    ],
)
def test_an_unknown_key_is_refused_by_name(key: BackgroundKey, message: str) -> None:
    background = _background({BackgroundKey("bg", "steel"): 5})

    with pytest.raises(UnknownActivityError, match=message):
        activity_id(background, key)


def test_park_ids_avoid_every_background_id() -> None:
    small = _background({BackgroundKey("bg", "steel"): 5})
    crowded = replace(
        small, activity_ids=MappingProxyType({BackgroundKey("bg", "x"): PARK_ID_OFFSET + 1})
    )

    assert park_ids(small, 3) == range(PARK_ID_OFFSET, PARK_ID_OFFSET + 3)
    assert park_ids(crowded, 3) == range(PARK_ID_OFFSET + 2, PARK_ID_OFFSET + 5)


async def test_park_footprint_with_a_linked_purchase_includes_the_background(
    bw2data: Any, project: Project, session: Any, caller: Any
) -> None:
    """The mill buys steel linked to ``("bg", "steel")``: 2 kg per kg of coil, and emits
    1 kg of fossil CO2 per kg of coil itself. Its coil's footprint is the dense solve of the
    same park in front of the background, less the aggregated CO2e the recipe adds."""
    from datetime import date

    from lca.inventory import build_inventory
    from lca.model import solve
    from mfa.ledger import FlowCreate, record_flows
    from mfa.models import MaterialKind, NodeKind
    from mfa.registry import (
        MaterialCreate,
        NodeCreate,
        ParkCreate,
        create_material,
        create_node,
        create_park,
        link_material,
    )
    from mfa.units import Dimension

    park = await create_park(session, ParkCreate(code="p", name="p", country="VN"), caller=caller)
    assert park.id is not None
    nodes = {}
    for code, kind, isic in [
        ("supplier", NodeKind.SUPPLIER, None),
        ("mill", NodeKind.ENTERPRISE, "2410"),
        ("customer", NodeKind.CUSTOMER, None),
        ("atmosphere", NodeKind.ATMOSPHERE, None),
    ]:
        node = await create_node(
            session,
            NodeCreate(park_id=park.id, code=code, name=code, kind=kind, isic_code=isic),
            caller=caller,
        )
        nodes[code] = node.id
    materials = {}
    for code, kind in [
        ("steel", MaterialKind.PRODUCT),
        ("coil", MaterialKind.PRODUCT),
        ("co2-fossil", MaterialKind.EMISSION),
    ]:
        material = await create_material(
            session,
            MaterialCreate(code=code, name=code, kind=kind, dimension=Dimension.MASS),
            caller=caller,
        )
        materials[code] = material.id
    await link_material(session, materials["steel"], caller=caller, database="bg", code="steel")
    january = (date(2025, 1, 1), date(2025, 1, 31))
    await record_flows(
        session,
        [
            FlowCreate(nodes[s], nodes[t], materials[m], q, "kg", *january)
            for s, t, m, q in [
                ("supplier", "mill", "steel", "2000"),
                ("mill", "customer", "coil", "1000"),
                ("mill", "atmosphere", "co2-fossil", "1000"),
            ]
        ],
        caller=caller,
    )
    inventory = await build_inventory(
        session,
        caller=caller,
        park_id=park.id,
        period_start=january[0],
        period_end=january[1],
        background_project=project.name,
    )
    assert not [m for m in inventory.missing if m.material_code == "steel"]
    coil = inventory.activity("production:mill:coil").index
    result = solve(inventory, {coil: 1.0})
    expected = _dense_score(_float32)[0] - PARK_CO2E
    assert result.total == pytest.approx(expected, rel=RTOL)
    assert sum(result.by_activity.values()) == pytest.approx(result.total, rel=RTOL)
    assert sum(result.by_flow.values()) == pytest.approx(result.total, rel=RTOL)
    unlinked = await build_inventory(
        session, caller=caller, park_id=park.id, period_start=january[0], period_end=january[1]
    )
    assert solve(unlinked, {coil: 1.0}).total == pytest.approx(PARK_CO2, rel=RTOL)

    from lca.attribution import Scope, attribute

    mill = inventory.activity("production:mill:coil").enterprise_id
    assert mill is not None
    split = attribute(inventory, enterprise_ids=frozenset({mill}), demand={coil: 1.0})
    assert split.by_scope[Scope.SCOPE_1] == pytest.approx(PARK_CO2, rel=RTOL)
    assert split.by_scope[Scope.SCOPE_3_CATEGORY_1] == pytest.approx(expected - PARK_CO2, rel=RTOL)
    assert split.by_enterprise["outside the park"] == pytest.approx(expected - PARK_CO2, rel=RTOL)
