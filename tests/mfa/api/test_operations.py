"""Every document in graphql/operations runs against the sample park and answers as expected.

Expected figures come from the sample park's CSV files, read here independently of the
service, never from the service's own output.
"""

from __future__ import annotations

import csv
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import GraphQLClient

ROOT = Path(__file__).resolve().parents[3]
OPERATIONS = ROOT / "graphql" / "operations"
SAMPLE = ROOT / "datasets" / "sample_park"
PARK = "amata-dn-synthetic"
JAN = {"start": "2025-01-01", "end": "2025-01-31"}
TO_BASE = {
    "t": Decimal(1000),
    "kg": Decimal(1),
    "m3": Decimal(1),
    "L": Decimal("0.001"),
    "MWh": Decimal(1000),
    "kWh": Decimal(1),
    "GJ": Decimal(1) / Decimal("0.0036"),
}


def _document(name: str) -> str:
    return (OPERATIONS / f"{name}.graphql").read_text()


def _csv(name: str) -> list[dict[str, str]]:
    with (SAMPLE / name).open(newline="") as handle:
        return list(csv.DictReader(handle))


class Ids:
    """Global ids of the sample park's objects, found through the API's own queries."""

    def __init__(self, gql: GraphQLClient) -> None:
        self.gql = gql
        self.park = ""
        self.nodes: dict[str, str] = {}
        self.materials: dict[str, str] = {}

    async def load(self) -> Ids:
        park = (await self.gql(_document("ParkEnterprises"), {"code": PARK}))["park"]
        self.park = park["id"]
        self.nodes = {n["code"]: n["id"] for n in park["enterprises"]["nodes"]}
        parks = await self.gql(_document("Parks"))
        (sample,) = [p for p in parks["parks"]["nodes"] if p["code"] == PARK]
        self.nodes |= {b["code"]: b["id"] for b in sample["boundaryNodes"]}
        materials = (await self.gql(_document("Materials"), {"first": 100}))["materials"]
        self.materials = {m["code"]: m["id"] for m in materials["nodes"]}
        return self


def _flow_reports(enterprise: str, month: str = "2025-01-01") -> list[dict[str, str]]:
    return [
        r
        for r in _csv("flows.csv")
        if r["period_start"] == month and enterprise in (r["source"], r["target"])
    ]


def _first_reports(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows that become flows. A report by the other side of an open transfer (same ends,
    material and period, both ends enterprises) confirms it instead of adding a flow."""
    enterprises = {n["code"] for n in _csv("nodes.csv") if n["kind"] == "enterprise"}
    open_reports: dict[tuple[str, ...], list[str]] = {}
    kept = []
    for r in rows:
        key = (r["source"], r["target"], r["material"], r["period_start"], r["period_end"])
        is_transfer = r["source"] in enterprises and r["target"] in enterprises
        waiting = open_reports.setdefault(key, [])
        other = next((p for p in waiting if p != r["reporting_party"]), None)
        if is_transfer and other is not None:
            waiting.remove(other)
            continue
        if is_transfer:
            waiting.append(r["reporting_party"])
        kept.append(r)
    return kept


async def check_parks(gql: GraphQLClient, ids: Ids) -> None:
    data = await gql(_document("Parks"))
    (park,) = data["parks"]["nodes"]
    nodes = _csv("nodes.csv")
    assert park["code"] == PARK
    assert park["enterprises"]["totalCount"] == sum(n["kind"] == "enterprise" for n in nodes)
    assert len(park["boundaryNodes"]) == sum(n["kind"] != "enterprise" for n in nodes)


async def check_park_enterprises(gql: GraphQLClient, ids: Ids) -> None:
    data = await gql(_document("ParkEnterprises"), {"code": PARK, "isicPrefix": "24"})
    expected = {n["code"] for n in _csv("nodes.csv") if n["isic_code"].startswith("24")}
    assert {n["code"] for n in data["park"]["enterprises"]["nodes"]} == expected


async def check_materials(gql: GraphQLClient, ids: Ids) -> None:
    data = await gql(_document("Materials"), {"kinds": ["WASTE"], "first": 100})
    expected = {m["code"] for m in _csv("../materials/materials.csv") if m["kind"] == "waste"}
    assert {m["code"] for m in data["materials"]["nodes"]} == expected
    assert all(m["canonicalUnit"] in ("kg", "m3") for m in data["materials"]["nodes"])


async def check_enterprise_books(gql: GraphQLClient, ids: Ids) -> None:
    enterprise = "dn-iron-foundry"
    got: list[dict[str, Any]] = []
    after = None
    while True:
        page = (
            await gql(
                _document("EnterpriseBooks"),
                {"enterprise": ids.nodes[enterprise], "period": JAN, "first": 40, "after": after},
            )
        )["flows"]
        got += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    expected = _first_reports(_flow_reports(enterprise))
    assert page["totalCount"] == len(got) == len(expected)
    expected_kg = sum(Decimal(r["quantity"]) * TO_BASE[r["unit"]] for r in expected)
    got_total = sum(Decimal(str(f["quantity"])) for f in got)
    assert float(got_total) == pytest.approx(float(expected_kg), rel=1e-12)
    assert all(f["batch"]["kind"] == "SAMPLE" for f in got)


async def check_park_flows(gql: GraphQLClient, ids: Ids) -> None:
    data = await gql(
        _document("ParkFlows"), {"park": ids.park, "kinds": ["WATER"], "period": JAN, "first": 100}
    )
    water = {m["code"] for m in _csv("../materials/materials.csv") if m["kind"] == "water"}
    expected = _first_reports(
        [
            r
            for r in _csv("flows.csv")
            if r["material"] in water and r["period_start"] == "2025-01-01"
        ]
    )
    assert data["flows"]["totalCount"] == len(expected)


async def check_mass_balance(gql: GraphQLClient, ids: Ids) -> None:
    enterprise = "lt-auto-body"
    data = (
        await gql(_document("MassBalance"), {"enterprise": ids.nodes[enterprise], "period": JAN})
    )["massBalance"]
    materials = {m["code"]: m for m in _csv("../materials/materials.csv")}
    rows = [
        r
        for r in _first_reports(_flow_reports(enterprise))
        if materials[r["material"]]["kind"] in ("product", "by_product", "waste")
        and materials[r["material"]]["dimension"] == "mass"
    ]
    inputs = sum(
        Decimal(r["quantity"]) * TO_BASE[r["unit"]] for r in rows if r["target"] == enterprise
    )
    outputs = sum(
        Decimal(r["quantity"]) * TO_BASE[r["unit"]] for r in rows if r["source"] == enterprise
    )
    total = data["materialTotal"]
    assert total["inputs"] == pytest.approx(float(inputs), rel=1e-12)
    assert total["outputs"] == pytest.approx(float(outputs), rel=1e-12)
    assert total["residual"] == pytest.approx(
        total["inputs"] - total["outputs"] - total["stockChange"], rel=1e-12
    )
    assert data["flowCount"] == len(_first_reports(_flow_reports(enterprise)))


async def check_chain(gql: GraphQLClient, ids: Ids) -> None:
    start = {
        "enterpriseMaterial": {
            "enterprise": ids.nodes["lt-auto-body"],
            "material": ids.materials["steel-scrap"],
        }
    }
    data = (await gql(_document("Chain"), {"start": start, "maxDepth": 2, "period": JAN}))["chain"]
    depth_one = [e["flow"] for e in data["edges"] if e["depth"] == 1]
    assert {f["target"]["code"] for f in depth_one} == {
        r["target"]
        for r in _flow_reports("lt-auto-body")
        if r["source"] == "lt-auto-body" and r["material"] == "steel-scrap"
    }
    foundry_outputs = {
        (r["target"], r["material"])
        for r in _flow_reports("dn-iron-foundry")
        if r["source"] == "dn-iron-foundry"
    }
    depth_two = {
        (e["flow"]["target"]["code"], e["flow"]["material"]["code"])
        for e in data["edges"]
        if e["depth"] == 2
    }
    assert foundry_outputs <= depth_two


async def check_node(gql: GraphQLClient, ids: Ids) -> None:
    node = (await gql(_document("Node"), {"id": ids.nodes["dn-paper"]}))["node"]
    assert (node["__typename"], node["code"], node["isicCode"]) == (
        "Enterprise",
        "dn-paper",
        "1701",
    )


async def check_park_create(gql: GraphQLClient, ids: Ids) -> None:
    data = await gql(
        _document("ParkCreate"), {"input": {"code": "deep-c", "name": "Deep C", "country": "VN"}}
    )
    assert data["parkCreate"]["park"]["code"] == "deep-c"


async def check_enterprise_create(gql: GraphQLClient, ids: Ids) -> None:
    data = await gql(
        _document("EnterpriseCreate"),
        {"input": {"park": ids.park, "name": "Amata Glass Recycling", "isicCode": "2310"}},
    )
    assert data["enterpriseCreate"]["enterprise"]["code"] == "amata-glass-recycling"


async def check_boundary_node_create(gql: GraphQLClient, ids: Ids) -> None:
    data = await gql(
        _document("BoundaryNodeCreate"),
        {"input": {"park": ids.park, "name": "Composting site", "kind": "RECYCLER"}},
    )
    assert data["boundaryNodeCreate"]["boundaryNode"]["kind"] == "RECYCLER"


async def check_material_create(gql: GraphQLClient, ids: Ids) -> None:
    data = await gql(
        _document("MaterialCreate"),
        {
            "input": {
                "code": "glass-cullet",
                "name": "Glass cullet",
                "kind": "WASTE",
                "dimension": "MASS",
                "hsCode": "7001",
                "ewcCode": "15 01 07",
            }
        },
    )
    assert data["materialCreate"]["material"]["canonicalUnit"] == "kg"


def _record_input(ids: Ids, **change: Any) -> dict[str, Any]:
    return {
        "source": ids.nodes["lt-auto-body"],
        "target": ids.nodes["dn-iron-foundry"],
        "material": ids.materials["steel-scrap"],
        "quantity": "4.2",
        "unit": "t",
        "periodStart": "2026-01-01",
        "periodEnd": "2026-01-31",
        "evidence": "LTA/DN/2601/9",
    } | change


async def check_flow_record(gql: GraphQLClient, ids: Ids) -> None:
    sent = (await gql(_document("FlowRecord"), {"input": _record_input(ids)}))["flowRecord"]
    assert (sent["flow"]["quantity"], sent["flow"]["transferStatus"]) == (4200.0, "UNCONFIRMED")
    received = (
        await gql(
            _document("FlowRecord"),
            {
                "input": _record_input(
                    ids, quantity="4150", unit="kg", reportingParty=ids.nodes["dn-iron-foundry"]
                )
            },
        )
    )["flowRecord"]
    assert received["linked"] is True
    assert received["flow"]["transferStatus"] == "CONFIRMED"


async def check_flows_record(gql: GraphQLClient, ids: Ids) -> None:
    rows = [_record_input(ids, quantity=str(q)) for q in (1, 2, 3)]
    data = (
        await gql(_document("FlowsRecord"), {"input": {"flows": rows, "idempotencyKey": "k1"}})
    )["flowsRecord"]
    assert (data["recordedCount"], data["linkedCount"], len(data["flowIds"])) == (3, 0, 3)


async def check_flow_reverse(gql: GraphQLClient, ids: Ids) -> None:
    flow = (await gql(_document("FlowRecord"), {"input": _record_input(ids)}))["flowRecord"]["flow"]
    data = (
        await gql(_document("FlowReverse"), {"input": {"flow": flow["id"], "reason": "duplicate"}})
    )["flowReverse"]
    assert data["reversal"]["quantity"] == -4200.0
    assert data["flow"]["transferStatus"] == "REVERSED"


async def check_flow_confirm(gql: GraphQLClient, ids: Ids) -> None:
    flow = (await gql(_document("FlowRecord"), {"input": _record_input(ids)}))["flowRecord"]["flow"]
    data = (
        await gql(
            _document("FlowConfirm"),
            {"input": {"flow": flow["id"], "quantity": "3.9", "unit": "t"}},
        )
    )["flowConfirm"]
    assert data["flow"]["transferStatus"] == "MISMATCHED"
    assert data["flow"]["confirmation"]["relativeDifference"] == pytest.approx(0.3 / 4.2)


async def check_stock_record(gql: GraphQLClient, ids: Ids) -> None:
    data = await gql(
        _document("StockRecord"),
        {
            "input": {
                "enterprise": ids.nodes["dn-paper"],
                "material": ids.materials["cardboard-waste"],
                "onDate": "2026-01-31",
                "quantity": "12",
                "unit": "t",
            }
        },
    )
    assert data["stockRecord"] == {"recorded": True, "userErrors": []}


async def check_footprint(gql: GraphQLClient, ids: Ids) -> None:
    subject = {
        "product": {
            "enterprise": ids.nodes["dn-paper"],
            "material": ids.materials["containerboard"],
        }
    }
    data = (await gql(_document("Footprint"), {"subject": subject, "period": JAN}))["footprint"]
    assert (data["declaredUnit"], data["unit"]) == ("kg", "kg CO2e")
    assert sum(c["value"] for c in data["byScope"]) == pytest.approx(data["total"], rel=1e-9)
    graph = data["graph"]
    assert graph["total"] == pytest.approx(data["total"], rel=1e-9)
    (root,) = [n for n in graph["nodes"] if n["key"] == "demand"]
    assert root["cumulative"] == pytest.approx(data["total"], rel=1e-9)
    assert any(
        e["consumer"] == "demand" and e["producer"] == "production:dn-paper:containerboard"
        for e in graph["edges"]
    )
    assert all(e["cumulative"] <= data["total"] * (1 + 1e-9) for e in graph["edges"])


async def check_park_emissions(gql: GraphQLClient, ids: Ids) -> None:
    data = (await gql(_document("ParkEmissions"), {"park": ids.park, "period": JAN}))[
        "parkEmissions"
    ]
    enterprises = {c["label"] for c in data["byEnterprise"]}
    reporters = {r["source"] for r in _flow_reports("dn-brewery") if r["target"] == "atmosphere"}
    assert reporters <= enterprises | {"outside the park"}
    assert sum(c["value"] for c in data["byEnterprise"]) == pytest.approx(data["total"], rel=1e-9)


CHECKS: dict[str, Callable[[GraphQLClient, Ids], Awaitable[None]]] = {
    "Parks": check_parks,
    "ParkEnterprises": check_park_enterprises,
    "Materials": check_materials,
    "EnterpriseBooks": check_enterprise_books,
    "ParkFlows": check_park_flows,
    "MassBalance": check_mass_balance,
    "Chain": check_chain,
    "Node": check_node,
    "ParkCreate": check_park_create,
    "EnterpriseCreate": check_enterprise_create,
    "BoundaryNodeCreate": check_boundary_node_create,
    "MaterialCreate": check_material_create,
    "FlowRecord": check_flow_record,
    "FlowsRecord": check_flows_record,
    "FlowReverse": check_flow_reverse,
    "FlowConfirm": check_flow_confirm,
    "StockRecord": check_stock_record,
    "Footprint": check_footprint,
    "ParkEmissions": check_park_emissions,
}


def test_every_operation_document_has_a_check() -> None:
    assert {p.stem for p in OPERATIONS.glob("*.graphql")} == set(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
async def test_operation_answers_on_the_sample_park(sample_gql: GraphQLClient, name: str) -> None:
    ids = await Ids(sample_gql).load()
    await CHECKS[name](sample_gql, ids)
