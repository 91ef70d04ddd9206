"""Every document in graphql/operations runs against the sample park and answers as expected.

Expected figures come from the sample park's CSV files, read here independently of the
service, never from the service's own output.
"""

from __future__ import annotations

import csv
import json
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


YEAR = {"start": "2025-01-01", "end": "2025-12-31"}
PLANTED = json.loads((SAMPLE / "planted.json").read_text())


async def check_circularity_gaps(gql: GraphQLClient, ids: Ids) -> None:
    kinds = ["MISMATCHED_TRANSFER", "UNCONFIRMED_TRANSFER"]
    variables = {"park": ids.park, "period": YEAR, "kinds": kinds, "first": 3}
    data = (await gql(_document("CircularityGaps"), variables))["circularityGaps"]
    expected = len(PLANTED["mismatched_transfers"]) + len(PLANTED["unconfirmed_transfers"])
    assert data["gaps"]["totalCount"] == expected
    assert sum(c["count"] for c in data["counts"]) == expected
    assert data["gaps"]["pageInfo"]["hasNextPage"] is True
    variables["after"] = data["gaps"]["pageInfo"]["endCursor"]
    variables["first"] = 50
    rest = (await gql(_document("CircularityGaps"), variables))["circularityGaps"]["gaps"]
    gaps = data["gaps"]["nodes"] + rest["nodes"]
    assert len(gaps) == expected
    mismatched = {
        (g["enterprises"][0]["code"], g["materials"][0]["code"], g["periodStart"])
        for g in gaps
        if g["kind"] == "MISMATCHED_TRANSFER"
    }
    assert mismatched == {
        (t["source"], t["material"], t["period_start"]) for t in PLANTED["mismatched_transfers"]
    }
    assert all(g["flows"][0]["transferStatus"] == g["kind"].split("_")[0] for g in gaps)


async def check_symbiosis_opportunities(gql: GraphQLClient, ids: Ids) -> None:
    variables = {"park": ids.park, "period": YEAR}
    data = (await gql(_document("SymbiosisOpportunities"), variables))["symbiosisOpportunities"]
    assert data["days"] == 365
    items = data["opportunities"]["nodes"]
    assert [o["rank"] for o in items] == list(range(1, len(items) + 1))
    for planted in PLANTED["landfilled_while_neighbour_buys_virgin"]:
        (found,) = [
            o
            for o in items
            if (o["producer"]["code"], o["buyer"]["code"])
            == (planted["waste_producer"], planted["buyer"])
        ]
        # Independent: the producer's disposal of that waste in the CSV, in kg; every month
        # of the year overlaps the buyer's monthly purchases, so all of it could move.
        disposed = sum(
            Decimal(r["quantity"]) * TO_BASE[r["unit"]]
            for r in _csv("flows.csv")
            if (r["source"], r["target"], r["material"])
            == (planted["waste_producer"], planted["disposal_node"], planted["waste_material"])
        )
        assert found["movablePerYear"] == pytest.approx(float(disposed))
        assert found["co2eAvoidedPerYear"] is None
        assert found["missingFactors"]


async def check_scenario_create(gql: GraphQLClient, ids: Ids) -> None:
    data = await gql(_document("ScenarioCreate"), {"input": _scenario_input(ids)})
    created = data["scenarioCreate"]
    assert created["userErrors"] == []
    assert [c["kind"] for c in created["scenario"]["changes"]] == ["REROUTE_WASTE"]
    again = await gql(_document("ScenarioCreate"), {"input": _scenario_input(ids)})
    assert again["scenarioCreate"]["userErrors"][0]["code"] == "DUPLICATE"


async def check_scenario_evaluate(gql: GraphQLClient, ids: Ids) -> None:
    created = await gql(_document("ScenarioCreate"), {"input": _scenario_input(ids)})
    scenario = created["scenarioCreate"]["scenario"]["id"]
    data = await gql(_document("ScenarioEvaluate"), {"input": {"scenario": scenario}})
    evaluation = data["scenarioEvaluate"]["evaluation"]
    swarf = sum(
        Decimal(r["quantity"]) * TO_BASE[r["unit"]]
        for r in _csv("flows.csv")
        if (r["source"], r["material"], r["period_start"])
        == ("bh-chassis", "aluminium-swarf", "2025-01-01")
        and r["target"] == "dn-landfill"
    )
    assert evaluation["changes"][0]["moved"] == pytest.approx(float(swarf) / 2)
    assert evaluation["park"]["wasteToDisposal"] == pytest.approx(-float(swarf) / 2)
    assert evaluation["park"]["virginMaterial"] == pytest.approx(-float(swarf) / 2)
    assert evaluation["summary"].startswith("1 solution saving")


def _scenario_input(ids: Ids) -> dict[str, Any]:
    return {
        "park": ids.park,
        "name": "swarf to the die caster",
        "period": JAN,
        "changes": [
            {
                "kind": "REROUTE_WASTE",
                "enterprise": ids.nodes["bh-chassis"],
                "share": 0.5,
                "material": ids.materials["aluminium-swarf"],
                "partner": ids.nodes["amata-diecast"],
                "replacedMaterial": ids.materials["aluminium-ingot"],
            }
        ],
    }


def _cti_inflow(members: set[str], month: str = "2025-01-01") -> tuple[Decimal, Decimal, int]:
    """CTI inflow of a set of enterprises from the CSV files: (circular kg, kg, entries)."""
    materials = {m["code"]: m for m in _csv("../materials/materials.csv")}
    enterprises = {n["code"] for n in _csv("nodes.csv") if n["kind"] == "enterprise"}
    rows = [
        r
        for r in _first_reports([r for r in _csv("flows.csv") if r["period_start"] == month])
        if r["target"] in members
        and r["source"] not in members
        and r["target"] in enterprises
        and materials[r["material"]]["kind"] in ("product", "by_product", "waste")
        and materials[r["material"]]["dimension"] == "mass"
    ]
    kg = [(Decimal(r["quantity"]) * TO_BASE[r["unit"]], materials[r["material"]]) for r in rows]
    circular = sum(
        (q for q, m in kg if "true" in (m["renewable"], m["secondary"])), start=Decimal(0)
    )
    return circular, sum((q for q, _ in kg), start=Decimal(0)), len(rows)


async def check_circularity(gql: GraphQLClient, ids: Ids) -> None:
    enterprises = {n["code"] for n in _csv("nodes.csv") if n["kind"] == "enterprise"}
    data = (await gql(_document("Circularity"), {"scope": {"park": ids.park}, "period": JAN}))[
        "circularity"
    ]
    inflow = data["material"]["circularInflow"]
    circular, total, entries = _cti_inflow(enterprises)
    assert inflow["denominator"] == pytest.approx(float(total), rel=1e-12)
    assert inflow["value"] == pytest.approx(float(circular / total), rel=1e-9)
    assert inflow["flowCount"] == inflow["flows"]["totalCount"] == entries
    assert data["scopeKind"] == "PARK"
    assert data["assumptions"]
    group = ["lt-auto-body", "dn-iron-foundry"]
    data = (
        await gql(
            _document("Circularity"),
            {"scope": {"enterprises": [ids.nodes[c] for c in group]}, "period": JAN},
        )
    )["circularity"]
    inflow = data["material"]["circularInflow"]
    circular, total, entries = _cti_inflow(set(group))
    assert inflow["denominator"] == pytest.approx(float(total), rel=1e-12)
    assert inflow["value"] == pytest.approx(float(circular / total), rel=1e-9)
    assert inflow["flows"]["totalCount"] == entries
    # the scrap lt-auto-body sends the foundry is internal to the group: never an inflow
    assert not any(f["source"]["code"] == "lt-auto-body" for f in inflow["flows"]["nodes"])
    assert {e["code"] for e in data["enterprises"]} == set(group)


async def check_eip_scorecard(gql: GraphQLClient, ids: Ids) -> None:
    data = (
        await gql(
            _document("EipScorecard"),
            {
                "park": ids.park,
                "period": YEAR,
                "thresholds": [{"criterion": "ifeip-energy", "threshold": 0.5}],
            },
        )
    )["eipScorecard"]
    expected = {(k["source"], k["target"], k["material"]) for k in PLANTED["symbiosis_links"]}
    found = {
        (k["source"]["code"], k["target"]["code"], k["material"]["code"])
        for k in data["symbiosisLinks"]
    }
    assert found == expected
    enterprises = sum(n["kind"] == "enterprise" for n in _csv("nodes.csv"))
    participants = {end for link in expected for end in link[:2]}
    evaluations = {e["criterion"]["id"]: e for e in data["evaluations"]}
    share = evaluations["vn-symbiosis-share"]
    assert share["value"] == pytest.approx(len(participants) / enterprises)
    assert share["verdict"] == "MET"
    assert evaluations["vn-cleaner-production"]["verdict"] == "CANNOT_JUDGE"
    energy = evaluations["ifeip-energy"]
    assert (energy["threshold"], energy["thresholdSetByPark"]) == (0.5, True)
    assert energy["verdict"] == ("MET" if energy["value"] >= 0.5 else "NOT_MET")


async def _import_job(gql: GraphQLClient, job_id: str) -> dict[str, Any]:
    import asyncio

    for _ in range(200):
        job: dict[str, Any] = (await gql(_document("ImportJob"), {"id": job_id}))["importJob"]
        if job["status"] not in ("PENDING", "RUNNING"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"import job {job_id} did not finish")


async def check_import(gql: GraphQLClient, ids: Ids) -> None:
    """A dry run of two generic rows (POST /imports), followed by ImportJob, then committed
    with ImportCommit: 1.5 MWh = 1500 kWh, 2 t = 2000 kg."""
    content = (
        b"external_id,movement,enterprise,partner,material,quantity,unit,date\n"
        b"OP-1,receipt,lt-auto-body,evn-grid,electricity,1.5,MWh,2026-01-06\n"
        b"OP-2,receipt,lt-auto-body,fuel-distributors,diesel,2,t,2026-01-07\n"
    )
    response = await gql.http.post(
        "/imports",
        files={"file": ("ops.csv", content, "text/csv")},
        data={"profile": "generic", "park": ids.park, "dry_run": "true"},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    job = await _import_job(gql, job_id)
    assert (job["status"], job["rowsTotal"], job["flows"]["totalCount"]) == ("VALIDATED", 2, 0)
    committed = await gql(_document("ImportCommit"), {"input": {"job": job_id}})
    assert committed["importCommit"]["userErrors"] == []
    job = await _import_job(gql, job_id)
    assert job["status"] == "SUCCEEDED", job
    flows = job["flows"]["nodes"]
    assert [(f["source"]["code"], f["material"]["code"], f["quantity"]) for f in flows] == [
        ("evn-grid", "electricity", 1500.0),
        ("fuel-distributors", "diesel", 2000.0),
    ]


async def _token_of(gql: GraphQLClient, credentials: dict[str, str]) -> GraphQLClient:
    """A client of the same app authenticated by the client-credentials grant."""
    response = await gql.http.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credentials["clientId"],
            "client_secret": credentials["clientSecret"],
        },
    )
    assert response.status_code == 200, response.text
    return gql.with_token(response.json()["access_token"])


async def _issue(gql: GraphQLClient, ids: Ids, role: str, **extra: str) -> dict[str, str]:
    data = await gql(
        _document("ApiClientCreate"),
        {"input": {"name": f"{role.lower()} of {PARK}", "role": role, "park": ids.park, **extra}},
    )
    assert data["apiClientCreate"]["userErrors"] == []
    credentials: dict[str, str] = data["apiClientCreate"]["credentials"]
    assert credentials["apiKey"] == f"{credentials['clientId']}.{credentials['clientSecret']}"
    return credentials


async def check_viewer(gql: GraphQLClient, ids: Ids) -> None:
    assert (await gql(_document("Viewer")))["viewer"] == {
        "subject": "tester",
        "role": "OPERATOR",
        "park": None,
        "enterprise": None,
    }
    enterprise = await _token_of(
        gql, await _issue(gql, ids, "ENTERPRISE", enterprise=ids.nodes["dn-paper"])
    )
    viewer = (await enterprise(_document("Viewer")))["viewer"]
    assert (viewer["role"], viewer["park"]["code"], viewer["enterprise"]["code"]) == (
        "ENTERPRISE",
        PARK,
        "dn-paper",
    )


async def check_api_client_create(gql: GraphQLClient, ids: Ids) -> None:
    auditor = await _token_of(gql, await _issue(gql, ids, "AUDITOR"))
    flows = await auditor("{ flows(first: 1) { totalCount } }")
    assert (
        flows["flows"]["totalCount"]
        == (await gql("{ flows(first: 1) { totalCount } }"))["flows"]["totalCount"]
    )
    refused = (
        await auditor(
            _document("ApiClientCreate"),
            {"input": {"name": "x", "role": "AUDITOR", "park": ids.park}},
        )
    )["apiClientCreate"]
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]


async def check_audit_events(gql: GraphQLClient, ids: Ids) -> None:
    auditor = await _token_of(gql, await _issue(gql, ids, "AUDITOR"))
    await auditor(_document("ApiClientCreate"), {"input": {"name": "x", "role": "OPERATOR"}})
    events = (await auditor(_document("AuditEvents"), {"park": ids.park}))["auditEvents"]
    assert [(e["subject"], e["action"], e["allowed"]) for e in events["nodes"]] == [
        ("tester", "ADMINISTER", True),
    ]
    assert events["nodes"][0]["operation"] == "mutation apiClientCreate"
    everything = (await gql(_document("AuditEvents")))["auditEvents"]["nodes"]
    assert [(e["action"], e["allowed"]) for e in everything] == [
        ("ADMINISTER", True),
        ("ADMINISTER", False),  # the auditor's attempt, bound to no park
    ]


async def check_footprint_share_create(gql: GraphQLClient, ids: Ids) -> None:
    credentials = await _issue(gql, ids, "PARTNER")
    partner = await _token_of(gql, credentials)
    product = {"enterprise": ids.nodes["dn-paper"], "material": ids.materials["containerboard"]}
    query = (
        "query F($s: FootprintSubjectInput!, $p: PeriodInput!) "
        "{ footprint(subject: $s, period: $p) { total } }"
    )
    before = await partner.raw(query, {"s": {"product": product}, "p": JAN})
    assert before["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for _ in range(2):  # sharing again changes nothing
        shared = await gql(
            _document("FootprintShareCreate"),
            {"input": {**product, "partner": credentials["clientId"]}},
        )
        assert shared["footprintShareCreate"] == {"shared": True, "userErrors": []}
    seen = await partner(query, {"s": {"product": product}, "p": JAN})
    published = await gql(query, {"s": {"product": product}, "p": JAN})
    assert seen["footprint"]["total"] == published["footprint"]["total"]


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
    "Circularity": check_circularity,
    "EipScorecard": check_eip_scorecard,
    "CircularityGaps": check_circularity_gaps,
    "SymbiosisOpportunities": check_symbiosis_opportunities,
    "ScenarioCreate": check_scenario_create,
    "ScenarioEvaluate": check_scenario_evaluate,
    "ImportJob": check_import,
    "ImportCommit": check_import,
    "Viewer": check_viewer,
    "ApiClientCreate": check_api_client_create,
    "AuditEvents": check_audit_events,
    "FootprintShareCreate": check_footprint_share_create,
}


def test_every_operation_document_has_a_check() -> None:
    assert {p.stem for p in OPERATIONS.glob("*.graphql")} == set(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
async def test_operation_answers_on_the_sample_park(sample_gql: GraphQLClient, name: str) -> None:
    ids = await Ids(sample_gql).load()
    await CHECKS[name](sample_gql, ids)
