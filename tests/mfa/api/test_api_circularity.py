"""The circularity and scorecard fields: figures as hand-computed, flows that add up, errors
that name the argument, and a statement count that does not grow with the ledger."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import GraphQLClient
from factories import World, make_world
from sqlalchemy.ext.asyncio import AsyncEngine

from mfa.access import Caller
from mfa.api.ids import to_global_id
from mfa.db import create_async, session_factory, transaction
from mfa.ledger import record_flows

PERIOD = {"start": "2025-01-01", "end": "2025-01-31"}
QUERY = """query C($scope: CircularityScopeInput!, $period: PeriodInput!, $first: Int = 2,
    $after: String) {
  circularity(scope: $scope, period: $period) {
    scopeKind
    material { circularOutflow { value numerator denominator flowCount
      flows(first: $first, after: $after) {
        totalCount nodes { quantity } pageInfo { hasNextPage endCursor } } } }
    waste { total fates { fate quantity flowCount } keptInside { value } }
    mciByEnterprise { enterprise { code } mci products { material { code } mass mci }
      feedstockFlows(first: 10) { totalCount } productFlows(first: 10) { totalCount } }
  }
}"""
SLIM = """query C($scope: CircularityScopeInput!, $period: PeriodInput!) {
  circularity(scope: $scope, period: $period) {
    material { materialCircularity { value } } energy { renewableShare { value } }
    waste { keptInside { value } } mciByEnterprise { enterprise { code } mci }
  }
}"""


async def _seed(url: str, caller: Caller, outflows: int = 5) -> World:
    """The mill buys 1000 kg of coil and sends scrap: to the landfill 40 kg, and ``outflows``
    sales of 100 kg of coil to the customer; the stamper returns 60 kg of scrap to it."""
    engine = create_async(url)
    try:
        async with transaction(session_factory(engine)) as session:
            world = await make_world(session, caller)
            w = world.flow
            rows = [
                w("supplier", "mill", "steel-coil", 1000),
                w("mill", "landfill", "steel-scrap", 40),
                w("stamper", "mill", "steel-scrap", 60, reporter="stamper"),
            ]
            rows += [w("mill", "customer", "steel-coil", 100) for _ in range(outflows)]
            await record_flows(session, rows, caller=caller)
    finally:
        await engine.dispose()
    return world


def _scope(world: World, code: str) -> dict[str, Any]:
    return {"enterprise": to_global_id("Enterprise", world.nodes[code])}


async def test_circularity_answers_with_pages_of_flows_that_add_up(
    gql: GraphQLClient, database_url: str, caller: Caller
) -> None:
    world = await _seed(database_url, caller)
    variables: dict[str, Any] = {"scope": _scope(world, "mill"), "period": PERIOD}
    data = (await gql(QUERY, variables))["circularity"]
    assert data["scopeKind"] == "ENTERPRISE"
    outflow = data["material"]["circularOutflow"]
    # 5 × 100 kg of coil (no recovery data: 0) and 40 kg of scrap landfilled (0)
    assert (outflow["value"], outflow["denominator"], outflow["flowCount"]) == (0.0, 540, 6)
    seen = [n["quantity"] for n in outflow["flows"]["nodes"]]
    while outflow["flows"]["pageInfo"]["hasNextPage"]:
        variables["after"] = outflow["flows"]["pageInfo"]["endCursor"]
        outflow = (await gql(QUERY, variables))["circularity"]["material"]["circularOutflow"]
        seen += [n["quantity"] for n in outflow["flows"]["nodes"]]
    assert sorted(seen) == [40, 100, 100, 100, 100, 100]
    assert data["waste"]["fates"] == [{"fate": "LANDFILLED", "quantity": 40.0, "flowCount": 1}]
    (mill,) = data["mciByEnterprise"]
    # coil 500 kg from feedstock 1060 kg, nothing secondary: V = M, W = M, LFI = 1, MCI 0.1
    assert mill["mci"] == pytest.approx(0.1)
    (coil,) = mill["products"]
    assert (coil["material"]["code"], coil["mass"]) == ("steel-coil", 500.0)
    assert coil["mci"] == pytest.approx(0.1)
    assert mill["feedstockFlows"]["totalCount"] == 2  # the coil and the returned scrap
    assert mill["productFlows"]["totalCount"] == 5


async def test_scope_errors_name_the_argument(
    gql: GraphQLClient, database_url: str, caller: Caller
) -> None:
    world = await _seed(database_url, caller)
    landfill = to_global_id("Enterprise", world.nodes["landfill"])
    body = await gql.raw(QUERY, {"scope": {"enterprise": landfill}, "period": PERIOD})
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["extensions"]["field"] == ["scope", "enterprises"]
    body = await gql.raw(
        QUERY,
        {
            "scope": {"park": to_global_id("Park", world.park)},
            "period": {"start": "2025-02-01", "end": "2025-01-01"},
        },
    )
    assert body["errors"][0]["extensions"]["code"] == "INVALID_PERIOD"
    both = {"park": to_global_id("Park", world.park), **_scope(world, "mill")}
    body = await gql.raw(QUERY, {"scope": both, "period": PERIOD})
    assert "exactly one key" in body["errors"][0]["message"]


async def test_circularity_statements_do_not_grow_with_the_ledger(
    gql: GraphQLClient,
    database_url: str,
    caller: Caller,
    count_statements: Callable[[AsyncEngine], list[str]],
) -> None:
    world = await _seed(database_url, caller)
    statements = count_statements(gql.app.state.engine)
    scopes = ({"park": to_global_id("Park", world.park)}, _scope(world, "mill"))

    async def count() -> list[int]:
        counts = []
        for scope in scopes:
            statements.clear()
            await gql(SLIM, {"scope": scope, "period": PERIOD})
            counts.append(len(statements))
        return counts

    before = await count()
    engine = create_async(database_url)
    async with transaction(session_factory(engine)) as session:
        more = [world.flow("mill", "customer", "parts", i + 1) for i in range(50)]
        more += [world.flow("supplier", "stamper", "steel-coil", i + 1) for i in range(50)]
        await record_flows(session, more, caller=caller)
    await engine.dispose()
    assert await count() == before
    # scope, class sums, enterprise sums, materials; park, enterprises loaders; a few more
    # for the request itself (authentication, the ledger version): a constant, not N
    assert max(before) <= 10, before


async def test_eip_scorecard_refuses_an_unknown_criterion_by_name(
    gql: GraphQLClient, database_url: str, caller: Caller
) -> None:
    world = await _seed(database_url, caller)
    query = """query S($park: ID!, $period: PeriodInput!, $t: [EipThresholdInput!]) {
      eipScorecard(park: $park, period: $period, thresholds: $t) {
        evaluations { criterion { id } verdict } } }"""
    park = to_global_id("Park", world.park)
    body = await gql.raw(
        query, {"park": park, "period": PERIOD, "t": [{"criterion": "nope", "threshold": 1}]}
    )
    assert body["errors"][0]["extensions"] == {"code": "NOT_FOUND", "field": ["thresholds"]}
    data = await gql(query, {"park": park, "period": PERIOD})
    verdicts = {e["criterion"]["id"]: e["verdict"] for e in data["eipScorecard"]["evaluations"]}
    # the stamper's scrap to the mill is the one link: 2 of 3 enterprises take part
    assert verdicts["vn-symbiosis-link"] == "MET"
    assert verdicts["vn-symbiosis-share"] == "MET"
    assert verdicts["vn-cleaner-production"] == "CANNOT_JUDGE"
