"""Query limits: cost, page size, body size, execution time; masked errors with a request id."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from conftest import GraphQLClient
from starlette.types import Receive, Scope, Send

from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse
from mfa import reads
from mfa.api.http import RequestGuard
from mfa.api.limits import FIELD_COSTS, query_cost
from mfa.api.schema import build_schema
from mfa.settings import Settings

SCHEMA = build_schema(Settings())._schema

NESTED_PAGES = """
{ parks(first: 5) { nodes { enterprises(first: 20) { nodes {
    park { enterprises(first: 10) { totalCount } } } } } } }
"""

FOOTPRINT_WITH_GRAPH = """
query ($depth: Int!) {
  footprint(subject: {enterprise: "x"}, period: {start: "2024-01-01", end: "2024-12-31"}) {
    total
    graph(maxDepth: $depth) { nodes { label } }
  }
}
"""


def _price(document: str, variables: dict[str, object] | None = None) -> int:
    parsed = parse(document)
    operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
    fragments = {
        d.name.value: d for d in parsed.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return query_cost(SCHEMA, operation, fragments, variables)


def test_every_priced_field_exists_in_the_schema() -> None:
    for key, cost in FIELD_COSTS.items():
        type_name, field_name = key.split(".")
        graphql_type = SCHEMA.get_type(type_name)
        assert graphql_type is not None, key
        field = graphql_type.fields.get(field_name)  # type: ignore[union-attr]
        assert field is not None, key
        if cost.scale_by is not None:
            assert cost.scale_by in field.args, (key, cost.scale_by)


def test_nested_pages_cost_one_per_connection_times_the_enclosing_page_sizes() -> None:
    # parks: 1; enterprises under 5 parks: 5 × 1; the inner enterprises under 5 × 20 nodes: 100.
    assert _price(NESTED_PAGES) == 1 + 5 + 5 * 20


def test_expensive_fields_are_priced_from_the_table_with_variables() -> None:
    footprint = FIELD_COSTS["Query.footprint"].weight
    graph = FIELD_COSTS["Footprint.graph"].weight
    assert _price(FOOTPRINT_WITH_GRAPH, {"depth": 4}) == footprint + graph * 4
    # a fragment is priced where it is spread, the default maxDepth (5) when none is given
    fragment = """
    query { footprint(subject: {enterprise: "x"}, period: {start: "2024-01-01",
      end: "2024-12-31"}) { ...F } }
    fragment F on Footprint { graph { nodes { label } } }
    """
    assert _price(fragment) == footprint + graph * 5


async def test_a_query_over_the_cost_limit_is_refused_before_it_runs(
    sample_gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    called = False

    async def counting(*args: object, **kwargs: object) -> object:
        nonlocal called
        called = True
        return await original(*args, **kwargs)

    original = reads.park_page
    monkeypatch.setattr(reads, "park_page", counting)
    sample_gql.app.state.settings.max_query_cost = 105  # the document costs 106
    body = await sample_gql.raw(NESTED_PAGES)
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["cost"] == 106
    assert "more than the limit of 105" in error["message"]
    assert not called
    sample_gql.app.state.settings.max_query_cost = 106
    data = await sample_gql(NESTED_PAGES)
    assert called
    assert data["parks"]["nodes"]


@pytest.mark.parametrize(
    "document",
    [
        "{ parks(first: %d) { totalCount } }",
        "{ materials(first: %d) { totalCount } }",
        "{ enterprises(first: %d) { totalCount } }",
        "{ flows(first: %d) { totalCount } }",
        "{ parks(first: 1) { nodes { enterprises(first: %d) { totalCount } } } }",
    ],
)
async def test_page_sizes_outside_one_to_the_maximum_are_refused(
    sample_gql: GraphQLClient, document: str
) -> None:
    limit = sample_gql.app.state.settings.max_page_size
    for size in (0, limit + 1):
        body = await sample_gql.raw(document % size)
        (error,) = body["errors"]
        assert f"first must be between 1 and {limit}, got {size}" in error["message"]
        assert error["extensions"]["field"] == ["first"]
    await sample_gql(document % limit)


async def test_a_body_over_the_size_limit_is_refused_with_413(gql: GraphQLClient) -> None:
    limit = gql.app.state.settings.max_request_bytes
    padding = " " * limit
    response = await gql.http.post(
        "/graphql",
        content=f'{{"query": "{{ __typename }}{padding}"}}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert str(limit) in response.json()["errors"][0]["message"]

    async def chunks() -> object:  # no Content-Length: counted as it streams
        yield b'{"query": "{ __typename }'
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536
        yield b'"}'

    streamed = await gql.http.post(
        "/graphql", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_uploads_take_their_own_larger_body_limit() -> None:
    """``POST /imports`` carries whole files: its prefix has a limit of its own, the rest of
    the service keeps the small one."""

    async def echo_size(scope: Scope, receive: Receive, send: Send) -> None:
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})

    guard = RequestGuard(echo_size, max_bytes=100, uploads=(("/imports", 1000),))
    transport = httpx.ASGITransport(app=guard)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        upload = await client.post("/imports", content=b"x" * 500)
        too_big_upload = await client.post("/imports", content=b"x" * 1001)
        query = await client.post("/graphql", content=b"x" * 500)
    assert (upload.status_code, upload.text) == (200, "500")
    assert too_big_upload.status_code == 413
    assert "1000 bytes" in too_big_upload.json()["errors"][0]["message"]
    assert query.status_code == 413
    assert "100 bytes" in query.json()["errors"][0]["message"]


async def test_an_operation_past_the_execution_timeout_is_stopped(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def slow(*_args: object, **_kwargs: object) -> None:
        await asyncio.sleep(30)

    monkeypatch.setattr(reads, "park_page", slow)
    gql.app.state.settings.execution_timeout = 0.2
    with caplog.at_level(logging.WARNING, logger="mfa.api"):
        response = await gql.http.post(
            "/graphql", json={"query": "{ parks(first: 1) { totalCount } }"}
        )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "TIMEOUT"
    assert "0.2 s" in error["message"]
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert response.headers["x-request-id"] in caplog.text


async def test_unexpected_errors_are_masked_and_logged_in_full_under_the_request_id(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("SELECT * FROM \"flow\" WHERE password = 'hunter2'")

    monkeypatch.setattr(reads, "park_page", explode)
    with caplog.at_level(logging.ERROR, logger="mfa.api"):
        response = await gql.http.post(
            "/graphql",
            json={"query": "{ parks(first: 1) { totalCount } }"},
            headers={"X-Request-Id": "client-chosen-id-42"},
        )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "client-chosen-id-42"
    text = response.text
    assert "hunter2" not in text
    assert "SELECT" not in text
    assert "Traceback" not in text
    (error,) = response.json()["errors"]
    assert error["message"] == "Unexpected error."
    assert error["extensions"] == {"code": "INTERNAL", "requestId": "client-chosen-id-42"}
    (record,) = [r for r in caplog.records if "client-chosen-id-42" in r.getMessage()]
    assert record.exc_info is not None
    assert "hunter2" in caplog.text
    assert "Traceback" in caplog.text


async def test_requests_without_an_id_get_a_fresh_one_each(gql: GraphQLClient) -> None:
    ids = {
        (await gql.http.post("/graphql", json={"query": "{ __typename }"})).headers["x-request-id"]
        for _ in range(3)
    }
    assert len(ids) == 3
    assert all(len(i) == 32 for i in ids)
