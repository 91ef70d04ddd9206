"""GraphQL over HTTP (draft spec): media types, status codes, CSRF guard, CORS, health."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from conftest import GraphQLClient

from mfa import migrations
from mfa.api.http import GRAPHQL_RESPONSE, JSON, negotiate
from mfa.app import create_app
from mfa.settings import Environment, Settings

PARKS = "{ parks(first: 1) { totalCount } }"
UNPARSABLE = "{ parks(first: 1) { totalCount }"
INVALID = "{ parks(first: 1) { noSuchField } }"


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        ("application/graphql-response+json", GRAPHQL_RESPONSE),
        ("application/json, application/graphql-response+json", GRAPHQL_RESPONSE),
        ("application/graphql-response+json;q=0.5, application/json", JSON),
        ("application/graphql-response+json, */*;q=0.1", GRAPHQL_RESPONSE),
        ("text/html", None),
        ("application/json;q=0", None),
    ],
)
def test_accept_header_picks_the_response_media_type(accept: str | None, chosen: str) -> None:
    assert negotiate(accept) == chosen


async def _post(
    gql: GraphQLClient, query: str, accept: str | None = GRAPHQL_RESPONSE
) -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    return await gql.http.post("/graphql", json={"query": query}, headers=headers)


async def test_graphql_response_json_is_answered_in_kind(gql: GraphQLClient) -> None:
    response = await _post(gql, PARKS)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert response.json() == {"data": {"parks": {"totalCount": 0}}}
    legacy = await _post(gql, PARKS, accept=None)
    assert legacy.headers["content-type"].startswith(JSON)


async def test_unparsable_document_is_400_without_data(gql: GraphQLClient) -> None:
    response = await _post(gql, UNPARSABLE)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    body = response.json()
    assert "data" not in body
    assert "Syntax Error" in body["errors"][0]["message"]


async def test_validation_failure_is_422_without_data(gql: GraphQLClient) -> None:
    response = await _post(gql, INVALID)
    assert response.status_code == 422
    body = response.json()
    assert "data" not in body
    assert "noSuchField" in body["errors"][0]["message"]
    too_deep = "{ flows(first: 1) { nodes { " + "reverses { " * 12 + "id" + " }" * 12 + " } } }"
    assert (await _post(gql, too_deep)).status_code == 422


async def test_application_json_answers_200_for_every_well_formed_request(
    gql: GraphQLClient,
) -> None:
    for query in (UNPARSABLE, INVALID):
        response = await _post(gql, query, accept=JSON)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(JSON)
        assert response.json()["errors"]


async def test_field_errors_keep_data_and_status_200(gql: GraphQLClient) -> None:
    response = await _post(gql, "{ parks(first: 0) { totalCount } }")
    assert response.status_code == 200
    body = response.json()
    assert "data" in body
    assert "first must be between" in body["errors"][0]["message"]


async def test_body_that_is_not_json_is_400(gql: GraphQLClient) -> None:
    response = await gql.http.post(
        "/graphql",
        content=b'{"query": ',
        headers={"Content-Type": JSON, "Accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"]


async def test_query_of_the_wrong_type_is_400(gql: GraphQLClient) -> None:
    response = await gql.http.post(
        "/graphql", json={"query": 42}, headers={"Accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_post_bodies_other_than_json_are_415_and_not_executed(
    gql: GraphQLClient, content_type: str | None
) -> None:
    mutation = (
        'mutation { parkCreate(input: {code: "x", name: "x", country: "VN"}) { park { id } } }'
    )
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps({"query": mutation}).encode()
    response = await gql.http.post("/graphql", content=body, headers=headers)
    assert response.status_code == 415
    assert (await gql(PARKS))["parks"]["totalCount"] == 0


async def test_unacceptable_accept_header_is_406(gql: GraphQLClient) -> None:
    response = await _post(gql, PARKS, accept="application/xml")
    assert response.status_code == 406


async def test_get_query_needs_a_preflight_forcing_header(gql: GraphQLClient) -> None:
    plain = await gql.http.get("/graphql", params={"query": PARKS}, headers={"Accept": JSON})
    assert plain.status_code == 400
    assert "GraphQL-Require-Preflight" in plain.json()["errors"][0]["message"]
    guarded = await gql.http.get(
        "/graphql",
        params={"query": PARKS},
        headers={"Accept": GRAPHQL_RESPONSE, "GraphQL-Require-Preflight": "1"},
    )
    assert guarded.status_code == 200
    assert guarded.json() == {"data": {"parks": {"totalCount": 0}}}


async def test_mutation_over_get_is_405_even_with_the_preflight_header(
    gql: GraphQLClient,
) -> None:
    mutation = (
        'mutation { parkCreate(input: {code: "x", name: "x", country: "VN"}) { park { id } } }'
    )
    for headers in ({}, {"GraphQL-Require-Preflight": "1"}):
        response = await gql.http.get(
            "/graphql", params={"query": mutation}, headers={"Accept": JSON, **headers}
        )
        assert response.status_code == 405
    assert (await gql(PARKS))["parks"]["totalCount"] == 0


async def test_cors_is_off_by_default_and_answers_configured_origins(
    gql: GraphQLClient, database_url: str
) -> None:
    preflight = {
        "Origin": "https://dashboard.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    off = await gql.http.options("/graphql", headers=preflight)
    assert "access-control-allow-origin" not in off.headers
    app = create_app(
        Settings(
            database_url=database_url,
            environment=Environment.TEST,
            cors_origins=["https://dashboard.example"],
        )
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        allowed = await http.options("/graphql", headers=preflight)
        other = await http.options(
            "/graphql", headers={**preflight, "Origin": "https://evil.example"}
        )
    await app.state.engine.dispose()
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://dashboard.example"
    assert "access-control-allow-origin" not in other.headers


async def test_healthz_and_readyz_touch_the_database(gql: GraphQLClient) -> None:
    ok = await gql.http.get("/healthz")
    assert (ok.status_code, ok.json()) == (200, {"status": "ok"})
    app = create_app(
        Settings(database_url="postgresql://nobody@127.0.0.1:1/none", environment=Environment.TEST)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        down = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert down.status_code == 503
    assert down.json()["status"] == "unavailable"
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"


async def test_readyz_needs_current_migrations(empty_database_url: str, tmp_path: Path) -> None:
    app = create_app(Settings(database_url=empty_database_url, environment=Environment.TEST))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        alive = await http.get("/healthz")
        before = await http.get("/readyz")
        migrations.upgrade(empty_database_url)
        after = await http.get("/readyz")
    await app.state.engine.dispose()
    assert alive.status_code == 200  # reachable, though not migrated: alive, not ready
    assert before.status_code == 503
    assert "migrations not current" in before.json()["error"]
    assert (after.status_code, after.json()) == (200, {"status": "ok"})
