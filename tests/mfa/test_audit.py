"""The audit trail over the API: committed writes and refused attempts, read by auditors."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from conftest import ClientAs, GraphQLClient
from factories import World, make_world
from sqlalchemy.ext.asyncio import AsyncEngine

from mfa.access import SYSTEM, Caller, Role
from mfa.api.ids import to_global_id
from mfa.audit import audited_transaction, event_page
from mfa.db import session_factory, transaction
from mfa.errors import PermissionDeniedError
from mfa.ledger import record_flow

RECORD = """mutation R($input: FlowRecordInput!) {
  flowRecord(input: $input) { flow { id recordedBy } userErrors { field code message } } }"""
REVERSE = """mutation V($input: FlowReverseInput!) {
  flowReverse(input: $input) { reversal { id } userErrors { code } } }"""
EVENTS = """query A($park: ID, $refusedOnly: Boolean) {
  auditEvents(park: $park, refusedOnly: $refusedOnly, first: 100) {
    totalCount nodes { subject role action operation parkId nodeId allowed reason at } } }"""


async def _world(gql: GraphQLClient) -> World:
    async with transaction(session_factory(gql.app.state.engine)) as session:
        return await make_world(session, SYSTEM)


def _flow(world: World, source: str, target: str, **extra: Any) -> dict[str, Any]:
    return {
        "source": to_global_id("Enterprise", world.nodes[source]),
        "target": to_global_id("Enterprise", world.nodes[target]),
        "material": to_global_id("Material", world.materials["steel-coil"]),
        "quantity": "4",
        "unit": "t",
        "periodStart": "2025-01-01",
        "periodEnd": "2025-01-31",
        **extra,
    }


async def _events(client: GraphQLClient, world: World, **variables: Any) -> list[dict[str, Any]]:
    data = await client(EVENTS, {"park": to_global_id("Park", world.park), **variables})
    nodes: list[dict[str, Any]] = data["auditEvents"]["nodes"]
    assert data["auditEvents"]["totalCount"] == len(nodes)
    return nodes


async def test_a_committed_write_is_in_the_trail_with_its_author(
    gql: GraphQLClient, client_as: ClientAs
) -> None:
    world = await _world(gql)
    mill = await client_as(
        gql, Role.ENTERPRISE, park_id=world.park, enterprise_id=world.nodes["mill"]
    )
    auditor = await client_as(gql, Role.AUDITOR, park_id=world.park)
    subject = (await mill("{ viewer { subject } }"))["viewer"]["subject"]

    recorded = (await mill(RECORD, {"input": _flow(world, "mill", "stamper")}))["flowRecord"]

    assert recorded["userErrors"] == []
    assert recorded["flow"]["recordedBy"] == subject
    (event,) = await _events(auditor, world)
    assert event["subject"] == subject
    assert (event["role"], event["action"], event["allowed"]) == ("ENTERPRISE", "RECORD", True)
    assert event["operation"] == "mutation flowRecord"
    assert event["parkId"] == to_global_id("Park", world.park)
    assert event["nodeId"] == to_global_id("Enterprise", world.nodes["mill"])


async def test_a_refused_attempt_is_in_the_trail_though_its_transaction_rolled_back(
    gql: GraphQLClient, client_as: ClientAs
) -> None:
    world = await _world(gql)
    mill = await client_as(
        gql, Role.ENTERPRISE, park_id=world.park, enterprise_id=world.nodes["mill"]
    )
    auditor = await client_as(gql, Role.AUDITOR, park_id=world.park)

    refused = (
        await mill(
            RECORD,
            {
                "input": _flow(
                    world,
                    "mill",
                    "stamper",
                    reportingParty=to_global_id("Enterprise", world.nodes["stamper"]),
                )
            },
        )
    )["flowRecord"]
    auditor_write = (await auditor(RECORD, {"input": _flow(world, "mill", "stamper")}))[
        "flowRecord"
    ]

    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]
    assert [e["code"] for e in auditor_write["userErrors"]] == ["FORBIDDEN"]
    assert (await gql("{ flows(first: 10) { totalCount } }"))["flows"]["totalCount"] == 0
    events = await _events(auditor, world, refusedOnly=True)
    assert [(e["role"], e["action"], e["allowed"]) for e in events] == [
        ("ENTERPRISE", "RECORD", False),
        ("AUDITOR", "RECORD", False),
    ]
    assert events[0]["nodeId"] == to_global_id("Enterprise", world.nodes["stamper"])
    assert "own enterprise" in events[0]["reason"]
    assert await _events(auditor, world) == events  # no grant: nothing was written


async def test_a_granted_write_that_rolls_back_leaves_no_grant(
    gql: GraphQLClient, client_as: ClientAs
) -> None:
    world = await _world(gql)
    admin = await client_as(gql, Role.PARK_ADMIN, park_id=world.park)
    flow = (await admin(RECORD, {"input": _flow(world, "mill", "stamper")}))["flowRecord"]["flow"]
    reverse = {"input": {"flow": flow["id"], "reason": "typo"}}
    assert (await admin(REVERSE, reverse))["flowReverse"]["userErrors"] == []

    again = (await admin(REVERSE, reverse))["flowReverse"]  # authorized, then refused

    assert [e["code"] for e in again["userErrors"]] == ["ALREADY_REVERSED"]
    events = await _events(admin, world)
    assert [e["operation"] for e in events] == ["mutation flowRecord", "mutation flowReverse"]


async def test_only_auditors_administrators_and_the_operator_read_the_trail(
    gql: GraphQLClient, client_as: ClientAs
) -> None:
    world = await _world(gql)
    other = await _world_other(gql)
    mill = await client_as(
        gql, Role.ENTERPRISE, park_id=world.park, enterprise_id=world.nodes["mill"]
    )
    foreign_auditor = await client_as(gql, Role.AUDITOR, park_id=other)
    park = {"park": to_global_id("Park", world.park)}

    for refused in (mill, foreign_auditor):
        body = await refused.raw(EVENTS, park)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    events = await _events(gql, world, refusedOnly=True)
    assert [(e["role"], e["action"]) for e in events] == [
        ("ENTERPRISE", "AUDIT"),
        ("AUDITOR", "AUDIT"),
    ]
    everything = await gql(EVENTS, {})  # the operator, every park
    assert everything["auditEvents"]["totalCount"] == 2


async def _world_other(gql: GraphQLClient) -> int:
    async with transaction(session_factory(gql.app.state.engine)) as session:
        return (await make_world(session, SYSTEM, code="other")).park


async def test_a_job_refused_outside_a_request_is_in_the_trail(engine: AsyncEngine) -> None:
    factory = session_factory(engine)
    async with transaction(factory) as session:
        world = await make_world(session, SYSTEM)
    auditor = Caller(subject="auditor-job", role=Role.AUDITOR, park_id=world.park)

    with pytest.raises(PermissionDeniedError):
        async with audited_transaction(factory, operation="import job 7") as session:
            await record_flow(
                session, world.flow("mill", "landfill", "steel-scrap", "1", "t"), caller=auditor
            )

    async with factory() as session:
        flows = (await session.execute(sa.text("SELECT count(*) FROM flow"))).scalar_one()
        page = await event_page(session, caller=SYSTEM, park_id=world.park, first=10)
    assert flows == 0
    assert [(e.subject, e.operation, e.allowed) for e in page.items] == [
        ("auditor-job", "import job 7", False)
    ]
