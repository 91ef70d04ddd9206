"""Mutations over HTTP: payloads, userErrors naming the field, and a ledger left as it was."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import GraphQLClient
from sqlalchemy.ext.asyncio import AsyncSession

from mfa.api.context import Context

SETUP = """
mutation Setup {
  parkCreate(input: {code: "p1", name: "Park one", country: "VN"}) {
    park { id code } userErrors { field message code }
  }
}
"""

ENTERPRISE = """
mutation E($input: EnterpriseCreateInput!) {
  enterpriseCreate(input: $input) {
    enterprise { id code name isicCode park { code } } userErrors { field message code }
  }
}
"""

BOUNDARY = """
mutation B($input: BoundaryNodeCreateInput!) {
  boundaryNodeCreate(input: $input) { boundaryNode { id kind } userErrors { field code } }
}
"""

MATERIAL = """
mutation M($input: MaterialCreateInput!) {
  materialCreate(input: $input) {
    material { id code canonicalUnit hazardous } userErrors { field message code }
  }
}
"""

RECORD = """
mutation R($input: FlowRecordInput!) {
  flowRecord(input: $input) {
    flow { id quantity unit reportedQuantity reportedUnit transferStatus
           reportingParty { code } confirmation { status relativeDifference } }
    linked
    userErrors { field message code }
  }
}
"""

BATCH = """
mutation B($input: FlowsRecordInput!) {
  flowsRecord(input: $input) {
    batch { id rowCount kind flows(first: 10) { totalCount } }
    flowIds recordedCount linkedCount replayed
    userErrors { field message code }
  }
}
"""

REVERSE = """
mutation V($input: FlowReverseInput!) {
  flowReverse(input: $input) {
    reversal { id quantity reason reverses { id } transferStatus }
    flow { id reversedBy { id } }
    userErrors { field message code }
  }
}
"""

CONFIRM = """
mutation C($input: FlowConfirmInput!) {
  flowConfirm(input: $input) {
    flow { transferStatus confirmation { status reportingParty { code } relativeDifference } }
    userErrors { field message code }
  }
}
"""

COUNT = "{ flows(first: 1) { totalCount } }"


async def _world(gql: GraphQLClient) -> dict[str, str]:
    park = (await gql(SETUP))["parkCreate"]["park"]["id"]
    ids = {"park": park}
    for code, isic in (("mill", "2410"), ("stamper", "2592")):
        data = await gql(
            ENTERPRISE,
            {"input": {"park": park, "name": code.title(), "code": code, "isicCode": isic}},
        )
        ids[code] = data["enterpriseCreate"]["enterprise"]["id"]
    for code, kind in (("supplier", "SUPPLIER"), ("landfill", "LANDFILL")):
        data = await gql(
            BOUNDARY, {"input": {"park": park, "name": code, "code": code, "kind": kind}}
        )
        ids[code] = data["boundaryNodeCreate"]["boundaryNode"]["id"]
    for code, kind, dim in (("coil", "PRODUCT", "MASS"), ("water", "WATER", "VOLUME")):
        data = await gql(
            MATERIAL, {"input": {"code": code, "name": code, "kind": kind, "dimension": dim}}
        )
        ids[code] = data["materialCreate"]["material"]["id"]
    return ids


def _flow(ids: dict[str, str], **change: Any) -> dict[str, Any]:
    base = {
        "source": ids["supplier"],
        "target": ids["mill"],
        "material": ids["coil"],
        "quantity": "12.5",
        "unit": "t",
        "periodStart": "2025-01-01",
        "periodEnd": "2025-01-31",
        "evidence": "DN-0001",
    }
    return base | change


async def _total(gql: GraphQLClient) -> int:
    return int((await gql(COUNT))["flows"]["totalCount"])


async def test_flow_record_returns_the_flow_in_canonical_units(gql: GraphQLClient) -> None:
    ids = await _world(gql)
    payload = (await gql(RECORD, {"input": _flow(ids)}))["flowRecord"]
    assert payload["userErrors"] == []
    flow = payload["flow"]
    assert (flow["quantity"], flow["unit"]) == (12500.0, "kg")
    assert (flow["reportedQuantity"], flow["reportedUnit"]) == ("12.5", "t")
    assert flow["transferStatus"] == "NOT_A_TRANSFER"
    assert flow["reportingParty"]["code"] == "mill"


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"quantity": "-3"}, ["input", "quantity"], "INVALID_QUANTITY"),
        ({"unit": "bananas"}, ["input", "unit"], "UNKNOWN_UNIT"),
        ({"unit": "m3"}, ["input", "unit"], "WRONG_DIMENSION"),
        ({"periodEnd": "2024-12-31"}, ["input", "periodEnd"], "INVALID_PERIOD"),
        ({"material": "bm90LWFuLWlk"}, ["input", "material"], "NOT_FOUND"),
        ({"target": "supplier"}, ["input", "target"], "SELF_FLOW"),
    ],
)
async def test_flow_record_refuses_bad_input_with_a_user_error(
    gql: GraphQLClient, change: dict[str, Any], field: list[str], code: str
) -> None:
    ids = await _world(gql)
    if change.get("target") == "supplier":
        change = {"target": ids["supplier"]}
    payload = (await gql(RECORD, {"input": _flow(ids, **change)}))["flowRecord"]
    assert payload["flow"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)]
    assert payload["userErrors"][0]["message"]
    assert await _total(gql) == 0


@pytest.mark.parametrize("quantity", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_quantity_is_refused(gql: GraphQLClient, quantity: str) -> None:
    ids = await _world(gql)
    payload = (await gql(RECORD, {"input": _flow(ids, quantity=quantity)}))["flowRecord"]
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "quantity"], "INVALID_QUANTITY")
    ]
    assert await _total(gql) == 0


async def test_other_sides_report_links_and_confirms_the_transfer(gql: GraphQLClient) -> None:
    ids = await _world(gql)
    sent = await gql(
        RECORD, {"input": _flow(ids, source=ids["mill"], target=ids["stamper"], quantity="10")}
    )
    assert sent["flowRecord"]["flow"]["transferStatus"] == "UNCONFIRMED"
    received = await gql(
        RECORD,
        {
            "input": _flow(
                ids,
                source=ids["mill"],
                target=ids["stamper"],
                quantity="9950",
                unit="kg",
                reportingParty=ids["stamper"],
            )
        },
    )
    payload = received["flowRecord"]
    assert payload["linked"] is True
    assert payload["flow"]["id"] == sent["flowRecord"]["flow"]["id"]
    assert payload["flow"]["transferStatus"] == "CONFIRMED"
    assert payload["flow"]["confirmation"]["relativeDifference"] == pytest.approx(0.005)
    assert await _total(gql) == 1


async def test_flow_confirm_by_the_counterparty_marks_a_mismatch(gql: GraphQLClient) -> None:
    ids = await _world(gql)
    sent = await gql(
        RECORD, {"input": _flow(ids, source=ids["mill"], target=ids["stamper"], quantity="10")}
    )
    flow_id = sent["flowRecord"]["flow"]["id"]
    payload = (await gql(CONFIRM, {"input": {"flow": flow_id, "quantity": "8", "unit": "t"}}))[
        "flowConfirm"
    ]
    assert payload["userErrors"] == []
    assert payload["flow"]["transferStatus"] == "MISMATCHED"
    assert payload["flow"]["confirmation"]["reportingParty"]["code"] == "stamper"
    assert payload["flow"]["confirmation"]["relativeDifference"] == pytest.approx(0.2)


async def test_flows_record_is_all_or_nothing_and_names_the_bad_row(gql: GraphQLClient) -> None:
    ids = await _world(gql)
    rows = [_flow(ids), _flow(ids, quantity="-1"), _flow(ids), _flow(ids, unit="kWh")]
    payload = (await gql(BATCH, {"input": {"flows": rows}}))["flowsRecord"]
    assert payload["batch"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "flows", "1", "quantity"], "INVALID_QUANTITY"),
        (["input", "flows", "3", "unit"], "WRONG_DIMENSION"),
    ]
    assert await _total(gql) == 0


async def test_flows_record_with_a_bad_id_names_the_row(gql: GraphQLClient) -> None:
    ids = await _world(gql)
    rows = [_flow(ids), _flow(ids, source="garbage")]
    payload = (await gql(BATCH, {"input": {"flows": rows}}))["flowsRecord"]
    assert [e["field"] for e in payload["userErrors"]] == [["input", "flows", "1", "source"]]
    assert await _total(gql) == 0


async def test_flows_record_replays_an_idempotent_batch(gql: GraphQLClient) -> None:
    ids = await _world(gql)
    rows = [_flow(ids), _flow(ids, quantity="3")]
    request = {"input": {"flows": rows, "idempotencyKey": "erp-jan", "source": "ERP export"}}
    first = (await gql(BATCH, request))["flowsRecord"]
    again = (await gql(BATCH, request))["flowsRecord"]
    assert first["recordedCount"] == 2
    assert first["batch"]["rowCount"] == 2
    assert first["batch"]["flows"]["totalCount"] == 2
    assert again["replayed"] is True
    assert again["flowIds"] == first["flowIds"]
    assert await _total(gql) == 2


async def test_flows_record_answers_from_its_own_transaction(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the batch commits, its answer needs no other session: with every read session
    failing (as if the database went down right after the commit), the client still learns
    that its batch was recorded."""
    ids = await _world(gql)

    @asynccontextmanager
    async def unreachable(self: Context) -> AsyncIterator[AsyncSession]:
        raise sa.exc.OperationalError("connect", None, ConnectionRefusedError(111, "refused"))
        yield  # pragma: no cover

    monkeypatch.setattr(Context, "read", unreachable)
    query = """
    mutation B($input: FlowsRecordInput!) {
      flowsRecord(input: $input) {
        batch { id rowCount kind } recordedCount replayed userErrors { message }
      }
    }"""
    payload = (await gql(query, {"input": {"flows": [_flow(ids), _flow(ids)]}}))["flowsRecord"]
    assert payload["userErrors"] == []
    assert (payload["batch"]["rowCount"], payload["batch"]["kind"]) == (2, "API")
    assert (payload["recordedCount"], payload["replayed"]) == (2, False)
    monkeypatch.undo()
    assert await _total(gql) == 2


async def test_flow_reverse_appends_the_opposite_entry_once(gql: GraphQLClient) -> None:
    ids = await _world(gql)
    flow_id = (await gql(RECORD, {"input": _flow(ids)}))["flowRecord"]["flow"]["id"]
    payload = (await gql(REVERSE, {"input": {"flow": flow_id, "reason": "wrong month"}}))[
        "flowReverse"
    ]
    assert payload["reversal"]["quantity"] == -12500.0
    assert payload["reversal"]["reverses"]["id"] == flow_id
    assert payload["flow"]["reversedBy"]["id"] == payload["reversal"]["id"]
    again = (await gql(REVERSE, {"input": {"flow": flow_id, "reason": "again"}}))["flowReverse"]
    assert [e["code"] for e in again["userErrors"]] == ["ALREADY_REVERSED"]
    twice = (await gql(REVERSE, {"input": {"flow": payload["reversal"]["id"], "reason": "undo"}}))[
        "flowReverse"
    ]
    assert [e["code"] for e in twice["userErrors"]] == ["ALREADY_REVERSED"]
    assert await _total(gql) == 2


async def test_registry_mutations_refuse_bad_codes(gql: GraphQLClient) -> None:
    ids = await _world(gql)
    no_isic = await gql(ENTERPRISE, {"input": {"park": ids["park"], "name": "X", "isicCode": "24"}})
    assert [e["field"] for e in no_isic["enterpriseCreate"]["userErrors"]] == [
        ["input", "isicCode"]
    ]
    dup = await gql(
        ENTERPRISE,
        {"input": {"park": ids["park"], "name": "Mill", "code": "mill", "isicCode": "2410"}},
    )
    assert [e["code"] for e in dup["enterpriseCreate"]["userErrors"]] == ["DUPLICATE"]
    hazardous = await gql(
        MATERIAL,
        {
            "input": {
                "code": "solvent",
                "name": "Spent solvent",
                "kind": "WASTE",
                "dimension": "MASS",
                "ewcCode": "14 06 03*",
            }
        },
    )
    assert hazardous["materialCreate"]["material"]["hazardous"] is True
    bad_ewc = await gql(
        MATERIAL,
        {
            "input": {
                "code": "x",
                "name": "x",
                "kind": "WASTE",
                "dimension": "MASS",
                "ewcCode": "150102",
            }
        },
    )
    assert [e["field"] for e in bad_ewc["materialCreate"]["userErrors"]] == [["input", "ewcCode"]]


LINK = """mutation L($input: MaterialLinkInput!) {
  materialLink(input: $input) {
    material { code brightwayActivity { database code } } userErrors { field code }
  }
}"""


async def test_material_link_sets_and_clears_the_brightway_key(gql: GraphQLClient) -> None:
    ids = await _world(gql)
    linked = await gql(LINK, {"input": {"material": ids["coil"], "database": "ei", "code": "x1"}})
    assert linked["materialLink"]["material"]["brightwayActivity"] == {
        "database": "ei",
        "code": "x1",
    }
    half = await gql(LINK, {"input": {"material": ids["coil"], "database": "ei"}})
    assert [e["field"] for e in half["materialLink"]["userErrors"]] == [["input", "code"]]
    cleared = await gql(LINK, {"input": {"material": ids["coil"]}})
    assert cleared["materialLink"]["material"]["brightwayActivity"] is None
