"""The sample park's emissions over GraphQL, against a separate SQL sum done in the test.

park total = Σ reported emissions × GWP + Σ fuel burnt × NCV × EF × GWP (for gases an
enterprise does not report itself) + grid electricity × grid factor (2023 for 2025).
Purchases have no cradle-to-gate factor in the shipped data: they count as zero and must be
listed as missing.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import GraphQLClient

from mfa.db import create_engine

GWP_AR6 = {"co2-fossil": 1.0, "ch4": 29.8, "n2o": 273.0}
# REFERENCE.md §4, IPCC 2006: (NCV TJ/Gg, {gas: kg/TJ}); coal CH4 = 10 (manufacturing)
FUELS = {
    "diesel": (43.0, {"co2-fossil": 74_100.0, "ch4": 3.0, "n2o": 0.6}),
    "natural-gas": (48.0, {"co2-fossil": 56_100.0, "ch4": 1.0, "n2o": 0.1}),
    "coal": (25.8, {"co2-fossil": 94_600.0, "ch4": 10.0, "n2o": 1.5}),
}
GRID_2023 = 0.6592
JAN = {"start": "2025-01-01", "end": "2025-01-31"}

SUMS = sa.text(
    """
    SELECT e.code AS enterprise, m.code AS material, other.kind AS other_kind,
           CASE WHEN f.source_id = e.id THEN 'out' ELSE 'in' END AS direction,
           SUM(f.quantity) AS quantity
    FROM flow f
    JOIN park_node e ON e.kind = 'enterprise' AND e.id IN (f.source_id, f.target_id)
    JOIN park_node other ON other.id = CASE WHEN f.source_id = e.id THEN f.target_id
                                            ELSE f.source_id END
    JOIN material m ON m.id = f.material_id
    WHERE f.period_start >= '2025-01-01' AND f.period_end <= '2025-01-31'
    GROUP BY e.code, m.code, other.kind, CASE WHEN f.source_id = e.id THEN 'out' ELSE 'in' END
    """
)


def _by_sql(url: str) -> float:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(SUMS).mappings().all()
    engine.dispose()
    reported: dict[str, set[str]] = {}
    total = 0.0
    for r in rows:
        if r["direction"] == "out" and r["other_kind"] == "atmosphere":
            reported.setdefault(r["enterprise"], set()).add(r["material"])
            total += float(r["quantity"]) * GWP_AR6[r["material"]]
    for r in rows:
        if r["direction"] != "in":
            continue
        if r["material"] == "electricity" and r["other_kind"] == "grid":
            total += float(r["quantity"]) * GRID_2023
        if r["material"] in FUELS:
            ncv, factors = FUELS[r["material"]]
            for gas, ef in factors.items():
                if gas not in reported.get(r["enterprise"], set()):
                    total += float(r["quantity"]) * ncv * 1e-6 * ef * GWP_AR6[gas]
    return total


PARK = """query P($park: ID!, $period: PeriodInput!) {
  parkEmissions(park: $park, period: $period) {
    total unit ledgerVersion containsAggregatedCo2e
    byEnterprise { label value } byGas { label value } byScope { scope value }
    missingFactors { materialCode reason quantity enterprises } notes
  } }"""

FOOTPRINT = """query F($subject: FootprintSubjectInput!, $period: PeriodInput!) {
  footprint(subject: $subject, period: $period) {
    total declaredUnit perDeclaredUnit ledgerVersion
    byEnterprise { label value share } byScope { scope value } byGas { label value }
  } }"""


async def _ids(gql: GraphQLClient) -> tuple[str, dict[str, str], dict[str, str]]:
    data = await gql(
        """{ park(code: "amata-dn-synthetic") { id enterprises(first: 100) { nodes { id code } } }
             materials(first: 100) { nodes { id code } } }"""
    )
    park = data["park"]
    return (
        park["id"],
        {n["code"]: n["id"] for n in park["enterprises"]["nodes"]},
        {m["code"]: m["id"] for m in data["materials"]["nodes"]},
    )


async def test_park_emissions_equal_a_separate_sql_sum(
    sample_gql: GraphQLClient, sample_database_url: str
) -> None:
    park, _, _ = await _ids(sample_gql)
    result = (await sample_gql(PARK, {"park": park, "period": JAN}))["parkEmissions"]
    assert result["total"] == pytest.approx(_by_sql(sample_database_url), rel=1e-9)
    for split in ("byEnterprise", "byGas", "byScope"):
        assert sum(c["value"] for c in result[split]) == pytest.approx(result["total"], rel=1e-9)
    missing = {(m["materialCode"], m["reason"]) for m in result["missingFactors"]}
    assert ("lpg", "no combustion factor") in missing
    assert ("pp-granules", "no cradle-to-gate factor") in missing
    assert "grid factor of 2023 used for 2025" in result["notes"]


async def test_product_footprint_is_per_declared_unit_and_attributed(
    sample_gql: GraphQLClient,
) -> None:
    _, enterprises, materials = await _ids(sample_gql)
    subject = {
        "product": {
            "enterprise": enterprises["lt-auto-body"],
            "material": materials["auto-components"],
        }
    }
    result = (await sample_gql(FOOTPRINT, {"subject": subject, "period": JAN}))["footprint"]
    assert result["declaredUnit"] == "kg"
    assert result["perDeclaredUnit"] == pytest.approx(result["total"])
    assert result["total"] > 0
    for split in ("byEnterprise", "byScope", "byGas"):
        assert sum(c["value"] for c in result[split]) == pytest.approx(result["total"], rel=1e-9)


async def test_footprint_is_cached_until_a_new_ledger_entry(sample_gql: GraphQLClient) -> None:
    _, enterprises, materials = await _ids(sample_gql)
    subject = {"enterprise": enterprises["dn-iron-foundry"]}
    first = (await sample_gql(FOOTPRINT, {"subject": subject, "period": JAN}))["footprint"]
    cached = sample_gql.app.state.footprints
    assert len(cached) == 1
    again = (await sample_gql(FOOTPRINT, {"subject": subject, "period": JAN}))["footprint"]
    assert again == first
    assert len(cached) == 1
    recorded = await sample_gql(
        """mutation R($input: FlowRecordInput!) { flowRecord(input: $input) { flow { id } } }""",
        {
            "input": {
                "source": enterprises["dn-iron-foundry"],
                "target": enterprises["dn-concrete"],
                "material": materials["foundry-slag"],
                "quantity": "1",
                "unit": "t",
                "periodStart": "2026-03-01",
                "periodEnd": "2026-03-31",
            }
        },
    )
    assert recorded["flowRecord"]["flow"]["id"]
    fresh = (await sample_gql(FOOTPRINT, {"subject": subject, "period": JAN}))["footprint"]
    assert fresh["ledgerVersion"] > first["ledgerVersion"]
    assert len(cached) == 2
    assert fresh["total"] == pytest.approx(first["total"])  # March 2026 is outside January


async def test_footprint_of_a_boundary_node_is_refused(sample_gql: GraphQLClient) -> None:
    body = await sample_gql.raw(FOOTPRINT, {"subject": {"enterprise": "bm90"}, "period": JAN})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


SET_PARAMETERS = """mutation S($input: RecyclingParametersSetInput!) {
  recyclingParametersSet(input: $input) { recorded userErrors { field code message } } }"""


async def test_recycling_method_without_emission_data_is_reported_missing(
    sample_gql: GraphQLClient,
) -> None:
    _, enterprises, materials = await _ids(sample_gql)
    bad = await sample_gql(
        SET_PARAMETERS,
        {"input": {"material": materials["pp-granules"], "r1": 0.2, "r2": 0.5, "a": 0.9}},
    )
    assert bad["recyclingParametersSet"]["recorded"] is False
    assert [e["code"] for e in bad["recyclingParametersSet"]["userErrors"]] == [
        "INVALID_RECYCLING_PARAMETER"
    ]
    good = await sample_gql(
        SET_PARAMETERS, {"input": {"material": materials["pp-granules"], "r1": 0.2, "r2": 0.5}}
    )
    assert good["recyclingParametersSet"] == {"recorded": True, "userErrors": []}
    query = """query F($subject: FootprintSubjectInput!, $period: PeriodInput!) {
      footprint(subject: $subject, period: $period, recycling: CIRCULAR_FOOTPRINT) {
        total avoided recycling missingFactors { materialCode reason } } }"""
    subject = {"enterprise": enterprises["phuoc-tan-moulding"]}
    result = (await sample_gql(query, {"subject": subject, "period": JAN}))["footprint"]
    assert result["recycling"] == "CIRCULAR_FOOTPRINT"
    assert result["avoided"] == 0.0
    assert {"materialCode": "pp-granules", "reason": "no recycling emission data"} in result[
        "missingFactors"
    ]
