"""Compiled flow pages answer exactly as graphql-core's executor, and leave it what they
cannot compile.

Each document runs on two apps over the same database, the response cache off in both: one
with the compiled path (``compiled_flow_pages``), one without; the executor's answer is the
independent calculation. ``RUNS`` tells which path answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from conftest import GraphQLClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from graphql import parse
from mfa.access import SYSTEM, Role
from mfa.api.compiled import RUNS, compile_document
from mfa.api.ids import decode_global_id
from mfa.api.schema import build_schema
from mfa.app import create_app
from mfa.auth import ClientCreate, create_client, issue_token
from mfa.db import session_factory, transaction
from mfa.settings import Environment, Settings

T = TypeVar("T")
OPERATIONS = Path(__file__).resolve().parents[3] / "graphql" / "operations"
BENCH_QUERY = """query EnterpriseFlows($enterprise: ID!, $first: Int!) {
  flows(filter: {enterprise: $enterprise, direction: OUT}, first: $first) {
    totalCount
    nodes { id quantity source { name } target { name } material { name kind } }
  }
}"""
ENDPOINT = "{ id code name kind __typename ... on Enterprise { isicCode taxId } }"
FLOW_FIELDS = [
    "id",
    "__typename",
    "quantity",
    "unit",
    "reportedQuantity",
    "reportedUnit",
    "periodStart",
    "periodEnd",
    "evidence",
    "relativeUncertainty",
    "reason",
    "value",
    "currency",
    "recordedBy",
    "recordedAt",
    "transferStatus",
    f"source {ENDPOINT}",
    f"target {ENDPOINT}",
    "material { id code name kind dimension canonicalUnit hsCode ewcCode vnWasteCode"
    " hazardous renewable secondary description brightwayActivity { database code } }",
    "reportingParty { id code name isicCode __typename }",
    "confirmation { quantity reportedQuantity reportedUnit evidence status relativeDifference"
    " tolerance recordedBy recordedAt reportingParty { code } }",
]
CONNECTION_FIELDS = [
    "totalCount",
    "__typename",
    "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }",
]


@dataclass
class Pair:
    """The same database behind two apps: compiled flow pages on, and off."""

    compiled: GraphQLClient
    executor: GraphQLClient
    park: str
    enterprises: list[str]

    async def same(
        self, query: str, variables: dict[str, Any] | None = None, *, headers: dict[str, str]
    ) -> tuple[dict[str, Any], bool]:
        """The compiled app's answer after checking it equals the executor's, and whether
        the compiled plan answered it."""
        before = RUNS["compiled"]
        fast = await GraphQLClient(self.compiled.http, self.compiled.app, headers).raw(
            query, variables
        )
        taken = RUNS["compiled"] > before
        slow = await GraphQLClient(self.executor.http, self.executor.app, headers).raw(
            query, variables
        )
        assert fast == slow
        return fast, taken


@pytest.fixture
def run() -> Iterator[Callable[[Awaitable[T]], T]]:
    """One event loop for the whole test: hypothesis calls the body once per example."""
    with asyncio.Runner() as runner:
        yield runner.run  # type: ignore[misc]


@pytest.fixture
def pair(sample_database_url: str, run: Callable[[Awaitable[Any]], Any]) -> Iterator[Pair]:
    clients: list[tuple[httpx.AsyncClient, Any]] = []

    async def client(compiled: bool) -> GraphQLClient:
        settings = Settings(
            database_url=sample_database_url,
            environment=Environment.TEST,
            response_cache=False,
            compiled_flow_pages=compiled,
        )
        app = create_app(settings)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        clients.append((http, app))
        return GraphQLClient(http, app)

    async def build() -> Pair:
        compiled, executor = await client(True), await client(False)
        pair = Pair(compiled, executor, "", [])
        operator = _headers(compiled.app.state.settings, Role.OPERATOR, None, None)
        found, _ = await pair.same(
            "{ parks { nodes { id } } flows(first: 100) { nodes { source { id kind } } } }",
            headers=operator,
        )
        pair.park = found["data"]["parks"]["nodes"][0]["id"]
        pair.enterprises = sorted(
            {
                n["source"]["id"]
                for n in found["data"]["flows"]["nodes"]
                if n["source"]["kind"] == "ENTERPRISE"
            }
        )
        return pair

    yield run(build())

    async def close() -> None:
        for http, app in clients:
            await http.aclose()
            await app.state.engine.dispose()

    run(close())


def _headers(
    settings: Settings, role: Role, park_id: int | None, enterprise_id: int | None
) -> dict[str, str]:
    token, _ = issue_token(
        client_id="tester",
        role=role,
        park_id=park_id,
        enterprise_id=enterprise_id,
        settings=settings,
    )
    return {"Authorization": f"Bearer {token}"}


def _role_headers(run: Callable[[Awaitable[Any]], Any], pair: Pair, role: Role) -> dict[str, str]:
    """A real API client of ``role`` on the sample park (the first enterprise for an
    enterprise), as the access rules see it."""
    park_id = None if role is Role.OPERATOR else _pk(pair.park)
    enterprise_id = _pk(pair.enterprises[0]) if role is Role.ENTERPRISE else None
    app = pair.compiled.app

    async def make() -> dict[str, str]:
        async with transaction(session_factory(app.state.engine)) as session:
            issued = await create_client(
                session,
                ClientCreate(f"test {role.value}", role, park_id, enterprise_id),
                caller=SYSTEM,
            )
        token, _ = issue_token(
            client_id=issued.client_id,
            role=role,
            park_id=park_id,
            enterprise_id=enterprise_id,
            settings=app.state.settings,
        )
        return {"Authorization": f"Bearer {token}"}

    headers: dict[str, str] = run(make())
    return headers


def _pk(global_id: str) -> int:
    decoded = decode_global_id(global_id)
    assert decoded is not None
    return decoded[1]


ROLES = [Role.OPERATOR, Role.PARK_ADMIN, Role.AUDITOR, Role.ENTERPRISE, Role.PARTNER]


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
def test_each_role_sees_through_the_compiled_page_what_the_executor_shows_it(
    pair: Pair, run: Callable[[Awaitable[Any]], Any], role: Role
) -> None:
    headers = _role_headers(run, pair, role)
    for enterprise in pair.enterprises[:3]:
        answer, taken = run(
            pair.same(BENCH_QUERY, {"enterprise": enterprise, "first": 100}, headers=headers)
        )
        assert "errors" not in answer
        assert taken
        if role is Role.PARTNER:  # reads no flows: an empty page, as flow_scope says
            assert answer["data"]["flows"] == {"totalCount": 0, "nodes": []}
    if role is Role.ENTERPRISE:
        whole = "{ flows(first: 100) { totalCount nodes { source { id } target { id } } } }"
        answer, taken = run(pair.same(whole, headers=headers))
        assert taken
        own = pair.enterprises[0]
        nodes = answer["data"]["flows"]["nodes"]
        assert nodes
        assert all(own in (n["source"]["id"], n["target"]["id"]) for n in nodes)


def test_every_flow_operation_the_compiler_accepts_answers_as_the_executor(
    pair: Pair, run: Callable[[Awaitable[Any]], Any]
) -> None:
    schema = build_schema(Settings())
    accepted = sorted(
        path.stem
        for path in OPERATIONS.glob("*.graphql")
        if compile_document(schema, parse(path.read_text()), None) is not None
    )
    assert "ParkFlows" in accepted
    variables: dict[str, dict[str, Any]] = {
        "ParkFlows": {
            "park": pair.park,
            "kinds": ["WASTE", "BY_PRODUCT"],
            "period": {"start": "2025-01-01", "end": "2025-06-30"},
            "first": 7,
        },
    }
    operator = _headers(pair.compiled.app.state.settings, Role.OPERATOR, None, None)
    for name in accepted:
        document = (OPERATIONS / f"{name}.graphql").read_text()
        answer, taken = run(pair.same(document, variables[name], headers=operator))
        assert taken, name
        assert answer["data"]["flows"]["nodes"], name


@pytest.mark.parametrize("first", [1, 7, 100])
def test_pages_followed_by_their_cursors_answer_as_the_executor(
    pair: Pair, run: Callable[[Awaitable[Any]], Any], first: int
) -> None:
    operator = _headers(pair.compiled.app.state.settings, Role.OPERATOR, None, None)
    query = """query Page($park: ID!, $first: Int!, $after: String) {
      flows(filter: {park: $park}, first: $first, after: $after) {
        totalCount
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { cursor node { id quantity } }
      }
    }"""
    after = None
    for _ in range(4):
        answer, taken = run(
            pair.same(query, {"park": pair.park, "first": first, "after": after}, headers=operator)
        )
        assert taken
        page = answer["data"]["flows"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A flows query with a random subset of fields, some aliased, some in named or inline
    fragments, with nodes and / or edges."""
    fields = draw(st.lists(st.sampled_from(FLOW_FIELDS), min_size=1, max_size=8, unique=True))
    parts: list[str] = []
    for i, f in enumerate(fields):
        alias = draw(st.booleans())
        parts.append(f"a{i}: {f}" if alias else f)
    split = draw(st.integers(min_value=0, max_value=len(parts)))
    inline = draw(st.sampled_from(["Flow", "Node", None]))
    node_body = " ".join(parts[:split])
    if split < len(parts):
        node_body += " ...Picked"
    if inline is not None:
        node_body += f" ... on {inline} {{ id }}"
    connection = draw(st.lists(st.sampled_from(CONNECTION_FIELDS), max_size=3, unique=True))
    lists = draw(st.sampled_from(["nodes", "edges", "both"]))
    if lists in ("nodes", "both"):
        connection.append(f"nodes {{ {node_body} }}")
    if lists in ("edges", "both"):
        connection.append(f"edges {{ cursor node {{ {node_body} }} }}")
    first = draw(st.integers(min_value=1, max_value=30))
    root = "__typename " if draw(st.booleans()) else ""
    document = (
        "query Q($park: ID!) { "
        + root
        + f"flows(filter: {{park: $park}}, first: {first}) {{ {' '.join(connection)} }} }}"
    )
    if split < len(parts):
        document += f" fragment Picked on Flow {{ {' '.join(parts[split:])} }}"
    return document


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=documents())
def test_random_selections_of_flow_fields_answer_as_the_executor(
    pair: Pair, run: Callable[[Awaitable[Any]], Any], document: str
) -> None:
    operator = _headers(pair.compiled.app.state.settings, Role.OPERATOR, None, None)
    answer, taken = run(pair.same(document, {"park": pair.park}, headers=operator))
    assert "errors" not in answer, document
    assert taken, document


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        # a field with a resolver of its own (DataLoader)
        ("{ flows(first: 5) { nodes { id reversedBy { id } batch { id } } } }", {}),
        ("{ flows(first: 5) { nodes { source { park { code } } } } }", {}),
        # a directive, even a constant one
        ("{ flows(first: 5) { nodes { id @include(if: true) quantity } } }", {}),
        (
            "query Q($on: Boolean!) { flows(first: 5) { nodes { id quantity @skip(if: $on) } } }",
            {"on": True},
        ),
        # another root field beside flows
        ("{ parks { totalCount } flows(first: 5) { totalCount } }", {}),
    ],
)
def test_documents_the_compiler_does_not_know_go_to_the_executor(
    pair: Pair, run: Callable[[Awaitable[Any]], Any], document: str, variables: dict[str, Any]
) -> None:
    operator = _headers(pair.compiled.app.state.settings, Role.OPERATOR, None, None)
    answer, taken = run(pair.same(document, variables, headers=operator))
    assert "errors" not in answer
    assert not taken


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        ("{ flows(first: 0) { totalCount } }", {}),
        ("{ flows(first: 101) { totalCount } }", {}),
        ('{ flows(first: 5, after: "nonsense") { totalCount } }', {}),
        ('{ flows(filter: {park: "RW50ZXJwcmlzZTox"}, first: 5) { totalCount } }', {}),
        (
            '{ flows(filter: {period: {start: "2025-02-01", end: "2025-01-01"}}) { totalCount } }',
            {},
        ),
        ("query Q($n: Int!) { flows(first: $n) { totalCount } }", {"n": "five"}),
        ("query Q($n: Int!) { flows(first: $n) { totalCount } }", {}),
    ],
)
def test_invalid_arguments_get_the_executors_errors(
    pair: Pair, run: Callable[[Awaitable[Any]], Any], document: str, variables: dict[str, Any]
) -> None:
    operator = _headers(pair.compiled.app.state.settings, Role.OPERATOR, None, None)
    answer, taken = run(pair.same(document, variables, headers=operator))
    assert "errors" in answer
    assert not taken


def test_every_flow_field_of_every_kind_of_row_answers_as_the_executor(
    pair: Pair, run: Callable[[Awaitable[Any]], Any]
) -> None:
    """All fields of ``Flow`` over the whole park, after a reversal and a Brightway link: rows
    with and without a confirmation (reported by either end), reversed or not, transfers and
    boundary flows, a material with and without an activity."""
    operator = _headers(pair.compiled.app.state.settings, Role.OPERATOR, None, None)
    executor = GraphQLClient(pair.executor.http, pair.executor.app, operator)
    first = run(executor("{ flows(first: 1) { nodes { id material { id } } } }"))
    flow = first["flows"]["nodes"][0]
    link = (
        'mutation L($m: ID!) { materialLink(input: {material: $m, database: "ei", code: "x1"}) '
        "{ userErrors { code } } }"
    )
    linked = run(executor(link, {"m": flow["material"]["id"]}))
    assert linked["materialLink"]["userErrors"] == []
    reverse = (
        'mutation R($f: ID!) { flowReverse(input: {flow: $f, reason: "test"}) '
        "{ userErrors { code } } }"
    )
    reversed_ = run(executor(reverse, {"f": flow["id"]}))
    assert reversed_["flowReverse"]["userErrors"] == []
    ends = (
        "{ flows(first: 100) { nodes { source { id __typename } target { id __typename } "
        "material { id } unit } } }"
    )
    transfer = next(
        n
        for n in run(executor(ends))["flows"]["nodes"]
        if n["source"]["__typename"] == n["target"]["__typename"] == "Enterprise"
    )
    record = (
        "mutation F($input: FlowRecordInput!) "
        "{ flowRecord(input: $input) { linked userErrors { code } } }"
    )
    report = {
        "source": transfer["source"]["id"],
        "target": transfer["target"]["id"],
        "material": transfer["material"]["id"],
        "quantity": "10",
        "unit": transfer["unit"],
        "periodStart": "2024-12-01",
        "periodEnd": "2024-12-31",
    }
    # reported by the target, then confirmed by the source
    for party, linked_ in ((transfer["target"]["id"], False), (transfer["source"]["id"], True)):
        recorded = run(executor(record, {"input": {**report, "reportingParty": party}}))
        assert recorded["flowRecord"] == {"linked": linked_, "userErrors": []}
    query = (
        "query Q($park: ID!, $after: String) { flows(filter: {park: $park}, first: 100, "
        "after: $after) { pageInfo { hasNextPage endCursor } nodes { "
        + " ".join(FLOW_FIELDS)
        + " } } }"
    )
    seen: set[str] = set()
    after = None
    while True:
        answer, taken = run(pair.same(query, {"park": pair.park, "after": after}, headers=operator))
        assert taken
        page = answer["data"]["flows"]
        for node in page["nodes"]:
            seen.add(node["transferStatus"])
            seen.add(node["source"]["__typename"])
            seen.add(node["target"]["__typename"])
            by_source = node["reportingParty"]["id"] == node["source"]["id"]
            seen.add("reported by source" if by_source else "reported by target")
            confirmation = node["confirmation"]
            if confirmation is not None:
                by_target = confirmation["reportingParty"]["code"] == node["target"]["code"]
                seen.add("confirmed by target" if by_target else "confirmed by source")
            linked_ = node["material"]["brightwayActivity"] is not None
            seen.add("linked" if linked_ else "not linked")
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == {
        *("CONFIRMED", "MISMATCHED", "NOT_A_TRANSFER", "REVERSED", "UNCONFIRMED"),
        *("Enterprise", "BoundaryNode", "reported by source", "reported by target"),
        *("confirmed by source", "confirmed by target", "linked", "not linked"),
    }


def test_a_compiled_page_reads_only_the_columns_its_document_selects(
    pair: Pair,
    run: Callable[[Awaitable[Any]], Any],
    count_statements: Callable[[AsyncEngine], list[str]],
) -> None:
    """The benchmark's page: the flow's id and quantity, its ends' names and kinds (which type
    them), its material's name and kind; otherwise the executor's two statements (joins,
    scope, filter, keyset, order, count)."""
    operator = _headers(pair.compiled.app.state.settings, Role.OPERATOR, None, None)
    statements = count_statements(pair.compiled.app.state.engine)
    executed = count_statements(pair.executor.app.state.engine)
    variables = {"enterprise": pair.enterprises[0], "first": 100}
    _, taken = run(pair.same(BENCH_QUERY, variables, headers=operator))
    assert taken
    page, count = (" ".join(s.split()) for s in statements if "flow" in s)
    executor_page, executor_count = (" ".join(s.split()) for s in executed if "flow" in s)
    assert page[page.index(" FROM ") :] == executor_page[executor_page.index(" FROM ") :]
    assert count == executor_count
    selected = page[len("SELECT ") : page.index(" FROM ")]
    assert [c.strip() for c in selected.split(",")] == [
        "f.id",
        "f.quantity",
        "src.name AS src_name",
        "src.kind AS src_kind",
        "tgt.name AS tgt_name",
        "tgt.kind AS tgt_kind",
        "mat.name AS mat_name",
        "mat.kind AS mat_kind",
    ]
    assert count.startswith("SELECT count(*)")
