"""Queries: connections, filters, node(id), page limits, and the read path's statement count."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from conftest import GraphQLClient
from factories import FEB, World, make_world
from sqlalchemy.ext.asyncio import AsyncEngine

from mfa.access import Caller
from mfa.api.ids import to_global_id
from mfa.db import create_async, session_factory, transaction
from mfa.ledger import record_flow, record_flows, reverse_flow


async def _seed(url: str, caller: Caller) -> tuple[World, dict[str, int]]:
    """A small ledger: purchases, a confirmed transfer, sales, a reversal, two months."""
    engine = create_async(url)
    try:
        async with transaction(session_factory(engine)) as session:
            world = await make_world(session, caller)
            f = world.flow
            ids = {
                "buy_jan": (
                    await record_flow(
                        session, f("supplier", "mill", "steel-coil", "10", "t"), caller=caller
                    )
                ).flow_id,
                "transfer": (
                    await record_flow(
                        session, f("mill", "stamper", "steel-coil", "6", "t"), caller=caller
                    )
                ).flow_id,
                "sale": (
                    await record_flow(
                        session, f("stamper", "customer", "parts", "5", "t"), caller=caller
                    )
                ).flow_id,
                "scrap": (
                    await record_flow(
                        session, f("stamper", "mill", "steel-scrap", "800", "kg"), caller=caller
                    )
                ).flow_id,
                "buy_feb": (
                    await record_flow(
                        session,
                        f("supplier", "mill", "steel-coil", "7", "t", period=FEB),
                        caller=caller,
                    )
                ).flow_id,
                "power": (
                    await record_flow(
                        session, f("grid", "mill", "electricity", "40", "MWh"), caller=caller
                    )
                ).flow_id,
            }
            await record_flow(
                session,
                f("mill", "stamper", "steel-coil", "6", "t", reporter="stamper"),
                caller=caller,
            )
            ids["reversal"] = await reverse_flow(
                session, ids["scrap"], caller=caller, reason="typo"
            )
            return world, ids
    finally:
        await engine.dispose()


@pytest.fixture
async def seeded(
    gql: GraphQLClient, database_url: str, caller: Caller
) -> tuple[GraphQLClient, World, dict[str, int]]:
    world, ids = await _seed(database_url, caller)
    return gql, world, ids


FLOWS = """
query F($filter: FlowFilter, $first: Int!, $after: String) {
  flows(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { id } }
    nodes {
      id quantity periodStart transferStatus
      source { __typename code ... on Enterprise { isicCode } park { code } }
      target { code }
      material { code kind }
    }
  }
}
"""


def _gid(pk: int) -> str:
    return to_global_id("Flow", pk)


async def test_flows_are_listed_in_recording_order_with_nested_objects(seeded) -> None:  # type: ignore[no-untyped-def]
    gql, _, ids = seeded
    data = (await gql(FLOWS, {"first": 100}))["flows"]
    assert data["totalCount"] == 7  # six recorded + one reversal; the confirmation is no flow
    assert [n["id"] for n in data["nodes"]] == [
        _gid(ids[k])
        for k in ("buy_jan", "transfer", "sale", "scrap", "buy_feb", "power", "reversal")
    ]
    first = data["nodes"][0]
    assert first["source"] == {
        "__typename": "BoundaryNode",
        "code": "supplier",
        "park": {"code": "test-park"},
    }
    assert first["material"] == {"code": "steel-coil", "kind": "PRODUCT"}
    statuses = {n["id"]: n["transferStatus"] for n in data["nodes"]}
    assert statuses[_gid(ids["transfer"])] == "CONFIRMED"
    assert statuses[_gid(ids["scrap"])] == "REVERSED"
    assert statuses[_gid(ids["buy_jan"])] == "NOT_A_TRANSFER"


async def test_keyset_pages_cover_every_flow_once(seeded) -> None:  # type: ignore[no-untyped-def]
    gql, _, _ = seeded
    seen: list[str] = []
    after = None
    while True:
        page = (await gql(FLOWS, {"first": 3, "after": after}))["flows"]
        seen += [n["id"] for n in page["nodes"]]
        assert page["edges"][-1]["cursor"] == page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 7


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"enterprise": "stamper", "direction": "IN"}, ["transfer"]),
        ({"enterprise": "stamper", "direction": "OUT"}, ["sale", "scrap", "reversal"]),
        ({"period": {"start": "2025-02-01", "end": "2025-02-28"}}, ["buy_feb"]),
        ({"kinds": ["ENERGY"]}, ["power"]),
        ({"materials": ["steel-scrap"], "includeReversed": False}, []),
        (
            {
                "enterprise": "mill",
                "direction": "IN",
                "includeReversed": False,
                "period": {"start": "2025-01-01", "end": "2025-01-31"},
            },
            ["buy_jan", "power"],
        ),
    ],
)
async def test_flow_filters_select_exactly_the_matching_flows(
    seeded,
    flt: dict[str, object],
    expected: list[str],  # type: ignore[no-untyped-def]
) -> None:
    gql, world, ids = seeded
    variables = dict(flt)
    if "enterprise" in variables:
        variables["enterprise"] = to_global_id(
            "Enterprise", world.nodes[str(variables["enterprise"])]
        )
    if "materials" in variables:
        variables["materials"] = [
            to_global_id("Material", world.materials[str(m)])
            for m in variables["materials"]  # type: ignore[attr-defined]
        ]
    data = (await gql(FLOWS, {"first": 100, "filter": variables}))["flows"]
    assert sorted(n["id"] for n in data["nodes"]) == sorted(_gid(ids[e]) for e in expected)
    assert data["totalCount"] == len(expected)


async def test_page_size_outside_one_to_hundred_is_an_error_naming_first(seeded) -> None:  # type: ignore[no-untyped-def]
    gql, _, _ = seeded
    for first in (0, 101):
        body = await gql.raw(FLOWS, {"first": first})
        assert body["data"] is None
        error = body["errors"][0]
        assert "first must be between 1 and 100" in error["message"]
        assert error["extensions"] == {"code": "INVALID", "field": ["first"]}


async def test_node_fetches_each_type_by_global_id(seeded) -> None:  # type: ignore[no-untyped-def]
    gql, world, ids = seeded
    query = """query N($id: ID!) { node(id: $id) { __typename id
      ... on Flow { quantity } ... on Enterprise { code } ... on Material { code }
      ... on BoundaryNode { kind } ... on Park { code } } }"""
    cases = {
        to_global_id("Flow", ids["sale"]): ("Flow", "quantity", 5000.0),
        to_global_id("Enterprise", world.nodes["mill"]): ("Enterprise", "code", "mill"),
        to_global_id("BoundaryNode", world.nodes["grid"]): ("BoundaryNode", "kind", "GRID"),
        to_global_id("Material", world.materials["parts"]): ("Material", "code", "parts"),
        to_global_id("Park", world.park): ("Park", "code", "test-park"),
    }
    for gid, (typename, field, value) in cases.items():
        node = (await gql(query, {"id": gid}))["node"]
        assert (node["__typename"], node["id"], node[field]) == (typename, gid, value)
    # an enterprise's id read as a boundary node, an unknown pk, and garbage are all null
    for gid in (
        to_global_id("BoundaryNode", world.nodes["mill"]),
        to_global_id("Flow", 10**9),
        "x",
    ):
        assert (await gql(query, {"id": gid}))["node"] is None


async def test_catalogue_queries_filter_and_count(seeded) -> None:  # type: ignore[no-untyped-def]
    gql, _, _ = seeded
    data = await gql(
        """{ parks(first: 10) { totalCount nodes { code boundaryNodes { code kind }
              enterprises(first: 10, isicPrefix: "24") { totalCount nodes { code } } } }
            materials(first: 10, kinds: [WASTE]) { totalCount nodes { code hazardous } }
            search: materials(first: 10, search: "12 01") { nodes { code } }
            park(code: "test-park") { name } }"""
    )
    (park,) = data["parks"]["nodes"]
    assert park["enterprises"] == {"totalCount": 1, "nodes": [{"code": "mill"}]}
    assert {b["code"] for b in park["boundaryNodes"]} == {
        "supplier",
        "customer",
        "landfill",
        "grid",
    }
    assert {(m["code"], m["hazardous"]) for m in data["materials"]["nodes"]} == {
        ("steel-scrap", False),
        ("wastewater", False),
        ("solvent", True),
    }
    assert data["search"]["nodes"] == [{"code": "steel-scrap"}]
    assert data["park"] == {"name": "Park test-park"}


async def test_nested_page_statement_count_does_not_grow_with_page_size(
    gql: GraphQLClient,
    database_url: str,
    caller: Caller,
    count_statements: Callable[[AsyncEngine], list[str]],
) -> None:
    engine = create_async(database_url)
    async with transaction(session_factory(engine)) as session:
        world = await make_world(session, caller)
        rows = [
            world.flow(
                "mill",
                "stamper",
                "steel-coil",
                str(i + 1),
                "t",
                period=(date(2025, 1, 1), date(2025, 1, 31)),
            )
            for i in range(120)
        ]
        await record_flows(session, rows, caller=caller)
    await engine.dispose()
    statements = count_statements(gql.app.state.engine)
    query = """query F($first: Int!) { flows(first: $first) { totalCount nodes {
        id quantity transferStatus reportingParty { code park { name } }
        source { name park { code } } target { name park { code } }
        material { name kind } confirmation { status } } } }"""
    counts = {}
    for first in (10, 100):
        statements.clear()
        data = await gql(query, {"first": first})
        assert len(data["flows"]["nodes"]) == first
        counts[first] = len(statements)
    # The page, its count, the ends' parks, and the response cache's look-up of the versions.
    assert counts[10] == counts[100] <= 4, counts
