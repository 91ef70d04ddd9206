"""The HTTP surface: the committed SDL, GraphiQL without a CDN, health, GraphQL over HTTP."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from conftest import GraphQLClient

import graphql
from mfa.api.schema import export_sdl
from mfa.app import create_app
from mfa.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def test_graphql_core_is_the_installed_library_not_the_repository_folder() -> None:
    assert "site-packages" in Path(graphql.__file__).parts
    assert not (ROOT / "graphql" / "__init__.py").exists()


def test_committed_schema_matches_the_code() -> None:
    committed = (ROOT / "graphql" / "schema.graphql").read_text()
    assert committed == export_sdl(), (
        "graphql/schema.graphql is stale: run `mfa export-schema > graphql/schema.graphql`"
    )


async def test_graphiql_page_and_assets_are_served_locally(gql: GraphQLClient) -> None:
    page = await gql.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources, page.text
    assert all(s.startswith("/graphiql-assets/") for s in sources), sources
    for source in sources:
        asset = await gql.http.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 1000


async def test_no_graphiql_when_disabled(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url, graphiql=False))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert "GraphiQL" not in page.text
        assert (await http.get("/graphiql-assets/graphiql.min.js")).status_code == 404
    await app.state.engine.dispose()


async def test_mutation_over_get_is_refused_with_405(gql: GraphQLClient) -> None:
    response = await gql.http.get(
        "/graphql",
        params={
            "query": 'mutation { parkCreate(input: {code: "x", name: "x", country: "VN"}) '
            "{ park { id } } }"
        },
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 405
    parks = await gql("{ parks(first: 1) { totalCount } }")
    assert parks["parks"]["totalCount"] == 0


async def test_query_deeper_than_the_limit_is_refused(gql: GraphQLClient) -> None:
    deep = "{ flows(first: 1) { nodes { " + "reverses { " * 12 + "id" + " }" * 12 + " } } }"
    body = await gql.raw(deep)
    assert body["data"] is None
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]


async def test_unexpected_errors_are_masked(gql: GraphQLClient, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from mfa import reads

    async def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("connection string postgres://secret")

    monkeypatch.setattr(reads, "park_page", explode)
    body = await gql.raw("{ parks(first: 1) { totalCount } }")
    error = body["errors"][0]
    assert error["message"] == "Unexpected error."
    assert "secret" not in str(body)
    assert error["extensions"]["code"] == "INTERNAL"
    assert len(error["extensions"]["requestId"]) == 32
