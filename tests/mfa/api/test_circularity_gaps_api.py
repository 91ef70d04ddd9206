"""The GraphQL edge of the gaps, opportunities and scenarios: limits, errors, ids, statements.

The figures themselves are pinned in tests/mfa/test_gaps.py, test_symbiosis.py and
test_scenarios.py, and the operations in test_operations.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import GraphQLClient
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parents[3]
YEAR = {"start": "2025-01-01", "end": "2025-12-31"}
IDS = """
query Ids {
  parks(first: 5) { nodes { id code enterprises(first: 100) { nodes { id code } } } }
  materials(first: 100) { nodes { id code } }
}
"""
GAPS = (ROOT / "graphql" / "operations" / "CircularityGaps.graphql").read_text()
CREATE = (ROOT / "graphql" / "operations" / "ScenarioCreate.graphql").read_text()


async def _ids(gql: GraphQLClient) -> tuple[str, dict[str, str], dict[str, str]]:
    data = await gql(IDS)
    (park,) = [p for p in data["parks"]["nodes"] if p["code"] == "amata-dn-synthetic"]
    nodes = {n["code"]: n["id"] for n in park["enterprises"]["nodes"]}
    return park["id"], nodes, {m["code"]: m["id"] for m in data["materials"]["nodes"]}


async def test_a_gaps_page_costs_the_same_statements_whatever_its_size(
    sample_gql: GraphQLClient, count_statements: Callable[[AsyncEngine], list[str]]
) -> None:
    park, _, _ = await _ids(sample_gql)
    statements = count_statements(sample_gql.app.state.engine)
    counts = []
    for first in (10, 40):  # both pages hold books, transfers (with flows) and materials
        statements.clear()
        data = await sample_gql(GAPS, {"park": park, "period": YEAR, "first": first})
        assert len(data["circularityGaps"]["gaps"]["nodes"]) == first
        counts.append(len(statements))
    assert counts[0] == counts[1]


async def test_page_size_and_period_are_checked(sample_gql: GraphQLClient) -> None:
    park, _, _ = await _ids(sample_gql)
    body = await sample_gql.raw(GAPS, {"park": park, "period": YEAR, "first": 0})
    assert body["errors"][0]["extensions"]["field"] == ["first"]
    backwards = {"start": "2025-12-31", "end": "2025-01-01"}
    body = await sample_gql.raw(GAPS, {"park": park, "period": backwards})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_PERIOD"


async def test_scenario_errors_name_the_input_path(sample_gql: GraphQLClient) -> None:
    park, nodes, materials = await _ids(sample_gql)
    change: dict[str, Any] = {
        "kind": "WATER_REUSE",
        "enterprise": nodes["amata-dyeing"],
        "share": 1.5,
        "material": materials["fresh-water"],
    }
    variables = {"input": {"park": park, "name": "reuse", "period": YEAR, "changes": [change]}}
    payload = (await sample_gql(CREATE, variables))["scenarioCreate"]
    assert payload["scenario"] is None
    assert payload["userErrors"][0]["field"] == ["input", "changes", "0", "share"]


async def test_a_stored_scenario_is_a_node(sample_gql: GraphQLClient) -> None:
    park, nodes, materials = await _ids(sample_gql)
    change = {
        "kind": "WATER_REUSE",
        "enterprise": nodes["amata-dyeing"],
        "share": 0.2,
        "material": materials["fresh-water"],
    }
    variables = {"input": {"park": park, "name": "reuse", "period": YEAR, "changes": [change]}}
    created = (await sample_gql(CREATE, variables))["scenarioCreate"]["scenario"]
    found = await sample_gql(
        "query($id: ID!) { node(id: $id) { id ... on Scenario { name changes { share } } } }",
        {"id": created["id"]},
    )
    assert found["node"] == {"id": created["id"], "name": "reuse", "changes": [{"share": 0.2}]}
