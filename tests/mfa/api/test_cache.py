"""The response cache: never stale, never shared across scopes; APQ and ETags.

Every check compares an answer with one the same app computes with the cache off, or with
the ledger rows the test wrote, never with the cache's own earlier output.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import ClientAs, GraphQLClient
from factories import World, make_world

from mfa.access import Caller, Role
from mfa.api.cache import EVERYTHING, is_volatile, operation_of, reads_of
from mfa.api.ids import to_global_id
from mfa.api.schema import build_schema
from mfa.app import create_app
from mfa.db import create_async, session_factory, transaction
from mfa.ledger import record_flow
from mfa.settings import Environment, Settings

PARK_FLOWS = """query ParkFlows($park: ID!) {
  flows(filter: {park: $park}, first: 20) {
    totalCount nodes { id quantity source { name park { code } } material { name kind } }
  }
}"""
PREFLIGHT = {"GraphQL-Require-Preflight": "1"}
REDIS_URL = "redis://127.0.0.1:6379/0"


async def _worlds(url: str, caller: Caller) -> tuple[World, World]:
    engine = create_async(url)
    try:
        async with transaction(session_factory(engine)) as session:
            return await make_world(session, caller), await make_world(session, caller, "other")
    finally:
        await engine.dispose()


async def _record(url: str, caller: Caller, world: World, tonnes: str) -> None:
    engine = create_async(url)
    try:
        async with transaction(session_factory(engine)) as session:
            await record_flow(
                session, world.flow("supplier", "mill", "steel-coil", tonnes, "t"), caller=caller
            )
    finally:
        await engine.dispose()


@pytest.fixture
def http(gql: GraphQLClient) -> httpx.AsyncClient:
    """The app with the in-process cache, authenticated as the tester (an operator)."""
    return gql.http


async def _post(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> httpx.Response:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.json()
    return response


async def _uncached(
    url: str, http: httpx.AsyncClient, query: str, variables: dict[str, Any]
) -> Any:
    """The answer of the same app and credentials with the cache off."""
    settings = Settings(database_url=url, environment=Environment.TEST, response_cache=False)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": http.headers["Authorization"]}
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=headers
        ) as client:
            response = await _post(client, query, variables)
            assert "x-cache" not in response.headers
            return response.json()
    finally:
        await app.state.engine.dispose()


async def test_a_write_invalidates_the_results_of_its_park_and_no_other(
    http: httpx.AsyncClient, database_url: str, caller: Caller
) -> None:
    first, second = await _worlds(database_url, caller)
    await _record(database_url, caller, first, "1")
    await _record(database_url, caller, second, "2")
    ids = {w.park: {"park": to_global_id("Park", w.park)} for w in (first, second)}
    for variables in ids.values():
        assert (await _post(http, PARK_FLOWS, variables)).headers["x-cache"] == "miss"
        assert (await _post(http, PARK_FLOWS, variables)).headers["x-cache"] == "hit"

    await _record(database_url, caller, first, "3")

    changed = await _post(http, PARK_FLOWS, ids[first.park])
    untouched = await _post(http, PARK_FLOWS, ids[second.park])
    assert changed.headers["x-cache"] == "miss"
    assert sorted(n["quantity"] for n in changed.json()["data"]["flows"]["nodes"]) == [
        1000.0,
        3000.0,
    ]
    assert untouched.headers["x-cache"] == "hit"
    assert untouched.json() == await _uncached(database_url, http, PARK_FLOWS, ids[second.park])


async def test_a_catalogue_write_invalidates_every_park(
    http: httpx.AsyncClient, database_url: str, caller: Caller
) -> None:
    world, _ = await _worlds(database_url, caller)
    await _record(database_url, caller, world, "1")
    variables = {"park": to_global_id("Park", world.park)}
    await _post(http, PARK_FLOWS, variables)
    assert (await _post(http, PARK_FLOWS, variables)).headers["x-cache"] == "hit"

    engine = create_async(database_url)
    async with engine.begin() as connection:
        await connection.execute(
            sa.text("UPDATE material SET name = 'Coil of steel' WHERE id = :id"),
            {"id": world.materials["steel-coil"]},
        )
    await engine.dispose()

    again = await _post(http, PARK_FLOWS, variables)
    assert again.headers["x-cache"] == "miss"
    assert again.json()["data"]["flows"]["nodes"][0]["material"]["name"] == "Coil of steel"


async def test_a_cached_answer_equals_a_fresh_one(
    http: httpx.AsyncClient, database_url: str, caller: Caller
) -> None:
    world, _ = await _worlds(database_url, caller)
    for tonnes in ("1", "2.5", "4"):
        await _record(database_url, caller, world, tonnes)
    variables = {"park": to_global_id("Park", world.park)}
    await _post(http, PARK_FLOWS, variables)

    cached = await _post(http, PARK_FLOWS, variables)

    assert cached.headers["x-cache"] == "hit"
    assert cached.json() == await _uncached(database_url, http, PARK_FLOWS, variables)
    assert cached.json()["data"]["flows"]["totalCount"] == 3


async def test_mutations_are_never_cached(http: httpx.AsyncClient) -> None:
    mutation = """mutation { parkCreate(input: {code: "p1", name: "P", country: "VN"}) {
        park { code } userErrors { code } } }"""
    first = await http.post("/graphql", json={"query": mutation})
    second = await http.post("/graphql", json={"query": mutation})

    assert "x-cache" not in first.headers
    assert "x-cache" not in second.headers
    assert first.json()["data"]["parkCreate"]["userErrors"] == []
    assert second.json()["data"]["parkCreate"]["userErrors"] != []  # ran again: code taken


async def test_two_scopes_never_share_an_entry(
    gql: GraphQLClient, database_url: str, caller: Caller, client_as: ClientAs
) -> None:
    first, second = await _worlds(database_url, caller)
    await _record(database_url, caller, first, "1")
    variables = {"park": to_global_id("Park", first.park)}
    auditors = {
        park: (await client_as(gql, Role.AUDITOR, park_id=park)).headers
        for park in (first.park, second.park)
    }

    async def ask(headers: dict[str, str]) -> tuple[str, Any]:
        response = await gql.http.post(
            "/graphql", json={"query": PARK_FLOWS, "variables": variables}, headers=headers
        )
        return response.headers.get("x-cache", ""), response.json()

    operator = [await ask({}), await ask({})]
    own = [await ask(auditors[first.park]), await ask(auditors[first.park])]
    other = await ask(auditors[second.park])

    assert [status for status, _ in operator] == ["miss", "hit"]
    assert [status for status, _ in own] == ["miss", "hit"]  # same data, its own entry
    assert own[1][1] == operator[0][1]
    assert other[0] != "hit"
    assert other[1] != operator[0][1]  # an auditor of another park never sees these flows
    assert "1000" not in json.dumps(other[1])


def test_root_lists_and_unconfined_fields_read_every_park() -> None:
    schema = build_schema(Settings())._schema
    enterprise = to_global_id("Enterprise", 7)

    def reads(query: str, variables: dict[str, Any] | None = None) -> Any:
        operation = operation_of(query, None)
        assert operation is not None
        return reads_of(schema, operation, variables or {})

    confined = reads(
        "query($e: ID!) { flows(filter: {enterprise: $e}) { nodes { source { park { name } } } } }",
        {"e": enterprise},
    )
    assert confined.nodes == frozenset({7})
    assert not confined.everything
    assert reads("{ flows { totalCount } }") == EVERYTHING
    assert reads("{ parks { totalCount } }") == EVERYTHING
    assert reads('{ park(code: "x") { name } }') == EVERYTHING
    assert (
        reads(
            "query($e: ID!) { flows(filter: {enterprise: $e}) { nodes { batch { id } } } }",
            {"e": enterprise},
        )
        == EVERYTHING
    )


def test_import_jobs_are_volatile_whether_asked_by_field_or_by_node() -> None:
    """A running job's progress lives in the server process, where no version tracks it."""

    def volatile(query: str, variables: dict[str, Any] | None = None) -> bool:
        operation = operation_of(query, None)
        assert operation is not None
        return is_volatile(operation, variables or {})

    job = to_global_id("ImportJob", 3)
    assert volatile("query($j: ID!) { importJob(id: $j) { status } }", {"j": job})
    assert volatile("query($j: ID!) { node(id: $j) { id } }", {"j": job})
    assert volatile("{ ...F } fragment F on Query { parks { totalCount } }")
    assert not volatile("query($p: ID!) { node(id: $p) { id } }", {"p": to_global_id("Park", 1)})
    assert not volatile("{ parks { totalCount } }")


async def test_persisted_query_round_trip(http: httpx.AsyncClient) -> None:
    query = "{ parks { totalCount } }"
    digest = hashlib.sha256(query.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}

    unknown = await http.post("/graphql", json={"extensions": extensions})
    registered = await http.post("/graphql", json={"query": query, "extensions": extensions})
    by_hash = await http.post("/graphql", json={"extensions": extensions})
    by_get = await http.get(
        "/graphql", params={"extensions": json.dumps(extensions)}, headers=PREFLIGHT
    )
    wrong = await http.post("/graphql", json={"query": "{ __typename }", "extensions": extensions})

    assert unknown.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert registered.json() == {"data": {"parks": {"totalCount": 0}}}
    assert by_hash.json() == registered.json()
    assert by_get.json() == registered.json()
    assert wrong.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"


async def test_get_query_answers_304_while_its_etag_holds(
    http: httpx.AsyncClient, database_url: str, caller: Caller
) -> None:
    world, _ = await _worlds(database_url, caller)
    params = {
        "query": PARK_FLOWS,
        "variables": json.dumps({"park": to_global_id("Park", world.park)}),
    }
    first = await http.get("/graphql", params=params, headers=PREFLIGHT)
    etag = first.headers["etag"]

    unchanged = await http.get(
        "/graphql", params=params, headers={**PREFLIGHT, "If-None-Match": etag}
    )
    await _record(database_url, caller, world, "1")
    changed = await http.get(
        "/graphql", params=params, headers={**PREFLIGHT, "If-None-Match": etag}
    )

    assert first.status_code == 200
    assert etag
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["data"]["flows"]["totalCount"] == 1


async def test_redis_backend_is_shared_by_two_workers(
    http: httpx.AsyncClient, database_url: str, caller: Caller
) -> None:
    import redis.asyncio as redis

    probe = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await probe.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    prefix = f"mfa-test-{uuid.uuid4().hex}:"
    world, _ = await _worlds(database_url, caller)
    await _record(database_url, caller, world, "1")
    settings = Settings(
        database_url=database_url,
        environment=Environment.TEST,
        cache_url=REDIS_URL,
        cache_prefix=prefix,
        cache_ttl=60,
    )
    apps = [create_app(settings), create_app(settings)]  # two workers, one Redis
    headers = {"Authorization": http.headers["Authorization"]}
    variables = {"park": to_global_id("Park", world.park)}
    seen = []
    try:
        for app in apps:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://test", headers=headers
            ) as client:
                response = await _post(client, PARK_FLOWS, variables)
                seen.append((response.headers["x-cache"], response.json()))
        stored = [key async for key in probe.scan_iter(f"{prefix}*")]
    finally:
        for app in apps:
            await app.state.response_cache.close()
            await app.state.engine.dispose()
        async for key in probe.scan_iter(f"{prefix}*"):
            await probe.delete(key)
        await probe.aclose()

    assert [status for status, _ in seen] == ["miss", "hit"]
    assert seen[1][1] == seen[0][1] == await _uncached(database_url, http, PARK_FLOWS, variables)
    assert len(stored) == 1


async def test_flows_of_an_enterprise_key_on_its_park(
    http: httpx.AsyncClient, database_url: str, caller: Caller
) -> None:
    first, second = await _worlds(database_url, caller)
    query = """query Mill($e: ID!) { flows(filter: {enterprise: $e}) {
        totalCount nodes { quantity target { name } } } }"""
    variables = {"e": to_global_id("Enterprise", first.nodes["mill"])}
    await _post(http, query, variables)

    await _record(database_url, caller, second, "5")  # another park: still a hit
    other_park = await _post(http, query, variables)
    await _record(database_url, caller, first, "2")  # the mill's park: a fresh answer
    own_park = await _post(http, query, variables)

    assert other_park.headers["x-cache"] == "hit"
    assert other_park.json()["data"]["flows"]["totalCount"] == 0
    assert own_park.headers["x-cache"] == "miss"
    assert own_park.json()["data"]["flows"]["nodes"] == [
        {"quantity": 2000.0, "target": {"name": "Steel mill"}}
    ]
