"""Every role against every root Query and Mutation field: allowed, denied or hidden.

The fields are read from the schema by introspection; a field without a probe here fails the
test, so a new root field cannot ship without an access expectation.

``ALLOW``: answered without FORBIDDEN and with the object in view. ``DENY``: refused with
FORBIDDEN (an error's ``extensions.code`` or a ``userErrors`` code). ``HIDDEN``: answered
without FORBIDDEN but with nothing of the park in view (null, empty, or "not found"), which is
how reads filtered by the caller's scope look.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conftest import ClientAs, GraphQLClient
from factories import World, make_footprint_world

from mfa.access import SYSTEM, Role
from mfa.api.ids import to_global_id
from mfa.db import session_factory, transaction
from mfa.models import ImportJob
from mfa.models.imports import ImportStatus

ALLOW, DENY, HIDDEN = "allow", "deny", "hidden"
OP, ADMIN, ENT, AUD, PARTNER = (
    Role.OPERATOR,
    Role.PARK_ADMIN,
    Role.ENTERPRISE,
    Role.AUDITOR,
    Role.PARTNER,
)
ROLES = (OP, ADMIN, ENT, AUD, PARTNER)
JAN = {"start": "2025-01-01", "end": "2025-01-31"}


@dataclass
class Ids:
    """Global ids of the world (park ``fp``, its mill and stamper, coil from mill to stamper)."""

    world: World
    extra: dict[str, str] = field(default_factory=dict)

    def park(self) -> str:
        return to_global_id("Park", self.world.park)

    def ent(self, code: str) -> str:
        kind = "Enterprise" if code in ("mill", "stamper") else "BoundaryNode"
        return to_global_id(kind, self.world.nodes[code])

    def mat(self, code: str) -> str:
        return to_global_id("Material", self.world.materials[code])


Vars = Callable[[Ids, Role], dict[str, Any]]


@dataclass(frozen=True)
class Probe:
    document: str
    variables: Vars
    expect: dict[Role, str]
    seen: Callable[[Any], bool] = lambda value: value is not None


def _only(allowed: tuple[Role, ...], otherwise: str = DENY) -> dict[Role, str]:
    return {role: ALLOW if role in allowed else otherwise for role in ROLES}


def _flow_input(ids: Ids, role: Role) -> dict[str, Any]:
    return {
        "source": ids.ent("mill"),
        "target": ids.ent("customer"),
        "material": ids.mat("coil"),
        "quantity": "1",
        "unit": "t",
        "periodStart": "2025-02-01",
        "periodEnd": "2025-02-28",
        "evidence": role.value,
    }


READERS = (OP, ADMIN, AUD)
MILL_SIDE = (OP, ADMIN, ENT)

QUERIES: dict[str, Probe] = {
    "node": Probe(
        "query Q($id: ID!) { node(id: $id) { id } }",
        lambda ids, _: {"id": ids.extra["coil_flow"]},
        _only((OP, ADMIN, ENT, AUD), HIDDEN),
    ),
    "parks": Probe(
        "{ parks(first: 10) { totalCount } }",
        lambda ids, _: {},
        _only(ROLES),
        lambda v: v["totalCount"] == 1,
    ),
    "park": Probe('query Q { park(code: "fp") { id } }', lambda ids, _: {}, _only(ROLES)),
    "enterprises": Probe(
        "query Q($p: ID) { enterprises(park: $p, first: 10) { totalCount } }",
        lambda ids, _: {"p": ids.park()},
        _only(ROLES),
        lambda v: v["totalCount"] == 2,
    ),
    "materials": Probe(
        "{ materials(first: 10) { totalCount } }",
        lambda ids, _: {},
        _only(ROLES),
        lambda v: v["totalCount"] > 0,
    ),
    "flows": Probe(
        "query Q($p: ID) { flows(filter: {park: $p}, first: 50) { totalCount } }",
        lambda ids, _: {"p": ids.park()},
        _only((OP, ADMIN, ENT, AUD), HIDDEN),
        lambda v: v["totalCount"] > 0,
    ),
    "massBalance": Probe(
        "query Q($e: ID!, $p: PeriodInput!) { massBalance(enterprise: $e, period: $p) "
        "{ flowCount } }",
        lambda ids, _: {"e": ids.ent("mill"), "p": JAN},
        _only((OP, ADMIN, ENT, AUD)),
    ),
    "chain": Probe(
        "query Q($f: ID!) { chain(start: {flow: $f}) { edges { depth } } }",
        lambda ids, _: {"f": ids.extra["coil_flow"]},
        _only((OP, ADMIN, ENT, AUD), HIDDEN),
    ),
    "footprint": Probe(
        "query Q($e: ID!, $m: ID!, $p: PeriodInput!) { footprint(subject: {product: "
        "{enterprise: $e, material: $m}}, period: $p) { total } }",
        lambda ids, _: {"e": ids.ent("mill"), "m": ids.mat("coil"), "p": JAN},
        _only(ROLES),  # the partner's share is made in the setup
    ),
    "parkEmissions": Probe(
        "query Q($park: ID!, $p: PeriodInput!) { parkEmissions(park: $park, period: $p) "
        "{ total } }",
        lambda ids, _: {"park": ids.park(), "p": JAN},
        _only(READERS),
    ),
    "circularityGaps": Probe(
        "query Q($park: ID!, $p: PeriodInput!) { circularityGaps(park: $park, period: $p) "
        "{ periodStart } }",
        lambda ids, _: {"park": ids.park(), "p": JAN},
        _only(READERS),
    ),
    "symbiosisOpportunities": Probe(
        "query Q($park: ID!, $p: PeriodInput!) { symbiosisOpportunities(park: $park, "
        "period: $p) { periodStart } }",
        lambda ids, _: {"park": ids.park(), "p": JAN},
        _only(READERS),
    ),
    "circularity": Probe(
        "query Q($e: ID!, $p: PeriodInput!) { circularity(scope: {enterprise: $e}, period: $p) "
        "{ periodStart } }",
        lambda ids, _: {"e": ids.ent("mill"), "p": JAN},
        _only((OP, ADMIN, ENT, AUD)),
    ),
    "eipScorecard": Probe(
        "query Q($park: ID!, $p: PeriodInput!) { eipScorecard(park: $park, period: $p) "
        "{ periodStart } }",
        lambda ids, _: {"park": ids.park(), "p": JAN},
        _only(READERS),
    ),
    "viewer": Probe("{ viewer { role } }", lambda ids, _: {}, _only(ROLES)),
    "auditEvents": Probe(
        "query Q($park: ID) { auditEvents(park: $park, first: 10) { totalCount } }",
        lambda ids, _: {"park": ids.park()},
        _only(READERS),
    ),
    "importJob": Probe(
        "query Q($id: ID!) { importJob(id: $id) { status } }",
        lambda ids, _: {"id": ids.extra["import_job"]},
        _only(READERS),
    ),
}

MUTATIONS: dict[str, Probe] = {
    "parkCreate": Probe(
        'mutation M($c: String!) { parkCreate(input: {code: $c, name: $c, country: "VN"}) '
        "{ userErrors { code } } }",
        lambda ids, role: {"c": f"new-{role.value.replace('_', '-')}"},
        _only((OP,)),
    ),
    "enterpriseCreate": Probe(
        "mutation M($p: ID!, $n: String!) { enterpriseCreate(input: {park: $p, name: $n, "
        'isicCode: "2410"}) { userErrors { code } } }',
        lambda ids, role: {"p": ids.park(), "n": f"new {role.value}"},
        _only((OP, ADMIN)),
    ),
    "boundaryNodeCreate": Probe(
        "mutation M($p: ID!, $n: String!) { boundaryNodeCreate(input: {park: $p, name: $n, "
        "kind: LANDFILL}) { userErrors { code } } }",
        lambda ids, role: {"p": ids.park(), "n": f"landfill {role.value}"},
        _only((OP, ADMIN)),
    ),
    "materialCreate": Probe(
        "mutation M($c: String!) { materialCreate(input: {code: $c, name: $c, kind: PRODUCT, "
        "dimension: MASS}) { userErrors { code } } }",
        lambda ids, role: {"c": f"m-{role.value.replace('_', '-')}"},
        _only((OP,)),
    ),
    "materialLink": Probe(
        "mutation M($m: ID!) { materialLink(input: {material: $m}) { userErrors { code } } }",
        lambda ids, _: {"m": ids.mat("ore")},
        _only((OP,)),
    ),
    "flowRecord": Probe(
        "mutation M($i: FlowRecordInput!) { flowRecord(input: $i) { userErrors { code } } }",
        lambda ids, role: {"i": _flow_input(ids, role)},
        _only(MILL_SIDE),
    ),
    "flowsRecord": Probe(
        "mutation M($i: [FlowRecordInput!]!) { flowsRecord(input: {flows: $i}) "
        "{ userErrors { code } } }",
        lambda ids, role: {"i": [_flow_input(ids, role)]},
        _only(MILL_SIDE),
    ),
    "flowReverse": Probe(
        'mutation M($f: ID!) { flowReverse(input: {flow: $f, reason: "test"}) '
        "{ userErrors { code } } }",
        lambda ids, _: {"f": ids.extra["coil_flow"]},
        _only(MILL_SIDE),  # after the first, ALREADY_REVERSED: authorized all the same
    ),
    "flowConfirm": Probe(
        "mutation M($f: ID!) { flowConfirm(input: {flow: $f}) { userErrors { code } } }",
        lambda ids, _: {"f": ids.extra["parts_flow"]},
        _only((OP, ADMIN)),  # the mill is not the counterparty of the stamper's report
    ),
    "stockRecord": Probe(
        "mutation M($e: ID!, $m: ID!) { stockRecord(input: {enterprise: $e, material: $m, "
        'onDate: "2025-01-31", quantity: "5", unit: "t"}) { userErrors { code } } }',
        lambda ids, _: {"e": ids.ent("mill"), "m": ids.mat("coil")},
        _only(MILL_SIDE),
    ),
    "recyclingParametersSet": Probe(
        "mutation M($m: ID!) { recyclingParametersSet(input: {material: $m, r1: 0.1, r2: 0.2}) "
        "{ userErrors { code } } }",
        lambda ids, _: {"m": ids.mat("coil")},
        _only((OP,)),
    ),
    "scenarioCreate": Probe(
        "mutation M($i: ScenarioCreateInput!) { scenarioCreate(input: $i) "
        "{ userErrors { code } } }",
        lambda ids, role: {"i": _scenario(ids, role.value)},
        _only((OP, ADMIN)),
    ),
    "scenarioEvaluate": Probe(
        "mutation M($s: ID!) { scenarioEvaluate(input: {scenario: $s}) { userErrors { code } } }",
        lambda ids, _: {"s": ids.extra["scenario"]},
        _only(READERS),
    ),
    "apiClientCreate": Probe(
        'mutation M($p: ID!) { apiClientCreate(input: {name: "x", role: AUDITOR, park: $p}) '
        "{ userErrors { code } } }",
        lambda ids, _: {"p": ids.park()},
        _only((OP, ADMIN)),
    ),
    "footprintShareCreate": Probe(
        "mutation M($e: ID!, $m: ID!, $p: String!) { footprintShareCreate(input: "
        "{enterprise: $e, material: $m, partner: $p}) { userErrors { code } } }",
        lambda ids, _: {"e": ids.ent("mill"), "m": ids.mat("coil"), "p": ids.extra["partner"]},
        _only(MILL_SIDE),
    ),
    "importCommit": Probe(
        "mutation M($j: ID!) { importCommit(input: {job: $j}) { userErrors { code } } }",
        lambda ids, _: {"j": ids.extra["import_job"]},
        _only((OP, ADMIN)),
    ),
}


def _scenario(ids: Ids, name: str) -> dict[str, Any]:
    return {
        "park": ids.park(),
        "name": f"solar {name}",
        "period": JAN,
        "changes": [{"kind": "SOLAR_FOR_GRID", "enterprise": ids.ent("mill"), "share": 0.5}],
    }


def _outcome(body: dict[str, Any], name: str, seen: Callable[[Any], bool]) -> str:
    codes = [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
    value = (body.get("data") or {}).get(name)
    if isinstance(value, dict):
        codes += [e["code"] for e in value.get("userErrors") or []]
    if "FORBIDDEN" in codes:
        return DENY
    if body.get("errors") or not seen(value):
        return HIDDEN
    return ALLOW


async def _root_fields(gql: GraphQLClient) -> dict[str, set[str]]:
    data = await gql(
        "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"
    )
    schema = data["__schema"]
    return {
        "query": {f["name"] for f in schema["queryType"]["fields"]},
        "mutation": {f["name"] for f in schema["mutationType"]["fields"]},
    }


async def _setup(gql: GraphQLClient, client_as: ClientAs) -> tuple[Ids, dict[Role, GraphQLClient]]:
    async with transaction(session_factory(gql.app.state.engine)) as session:
        world = await make_footprint_world(session, SYSTEM)
        job = ImportJob(
            park_id=world.park,
            profile="generic",
            file_name="movements.csv",
            file_hash="0" * 64,
            file_size=1,
            stored_path="/nonexistent/movements.csv",
            status=ImportStatus.VALIDATED,
            created_by=SYSTEM.subject,
        )
        session.add(job)
        await session.flush()
        assert job.id is not None
    ids = Ids(world, {"import_job": to_global_id("ImportJob", job.id)})
    clients = {OP: gql}
    clients[ADMIN] = await client_as(gql, ADMIN, park_id=world.park)
    clients[ENT] = await client_as(gql, ENT, park_id=world.park, enterprise_id=world.nodes["mill"])
    clients[AUD] = await client_as(gql, AUD, park_id=world.park)
    partner_id = await _partner_id(gql, client_as, world, clients)
    ids.extra["partner"] = partner_id
    flows = await gql("{ flows(first: 50) { nodes { id source { code } material { code } } } }")
    by = {(f["source"]["code"], f["material"]["code"]): f["id"] for f in flows["flows"]["nodes"]}
    ids.extra["coil_flow"] = by[("mill", "coil")]
    ids.extra["parts_flow"] = by[("stamper", "parts")]
    created = await gql(
        "mutation M($i: ScenarioCreateInput!) { scenarioCreate(input: $i) "
        "{ scenario { id } userErrors { message } } }",
        {"i": _scenario(ids, "setup")},
    )
    ids.extra["scenario"] = created["scenarioCreate"]["scenario"]["id"]
    return ids, clients


async def _partner_id(
    gql: GraphQLClient, client_as: ClientAs, world: World, clients: dict[Role, GraphQLClient]
) -> str:
    """A partner client, with the mill's coil footprint shared with it (its token is made after
    the share, and shares are read per request anyway)."""
    probe = await client_as(gql, PARTNER, park_id=world.park, name="partner")
    subject: str = (await probe("{ viewer { subject } }"))["viewer"]["subject"]
    shared = await gql(
        "mutation M($e: ID!, $m: ID!, $p: String!) { footprintShareCreate(input: "
        "{enterprise: $e, material: $m, partner: $p}) { shared userErrors { message } } }",
        {
            "e": to_global_id("Enterprise", world.nodes["mill"]),
            "m": to_global_id("Material", world.materials["coil"]),
            "p": subject,
        },
    )
    assert shared["footprintShareCreate"]["shared"], shared
    clients[PARTNER] = probe
    return subject


async def test_every_role_meets_its_expectation_on_every_root_field(
    gql: GraphQLClient, client_as: ClientAs
) -> None:
    fields = await _root_fields(gql)
    missing = (fields["query"] - set(QUERIES)) | (fields["mutation"] - set(MUTATIONS))
    assert not missing, f"root fields with no access expectation in the matrix: {missing}"
    stale = (set(QUERIES) - fields["query"]) | (set(MUTATIONS) - fields["mutation"])
    assert not stale, f"matrix entries for fields that no longer exist: {stale}"

    ids, clients = await _setup(gql, client_as)
    wrong: list[str] = []
    for name, probe in [*QUERIES.items(), *MUTATIONS.items()]:
        assert set(probe.expect) == set(ROLES), name
        for role in ROLES:
            body = await clients[role].raw(probe.document, probe.variables(ids, role))
            got = _outcome(body, name, probe.seen)
            if got != probe.expect[role]:
                wrong.append(
                    f"{name} as {role.value}: expected {probe.expect[role]}, got {got}: {body}"
                )
    assert not wrong, "\n".join(wrong)


async def test_a_partner_gets_a_shared_footprint_s_figures_but_not_whose_books_they_come_from(
    gql: GraphQLClient, client_as: ClientAs
) -> None:
    """The breakdown by enterprise, by activity, the missing factors and the supply graph name
    the suppliers and their emissions: a park reader sees them, the partner sees nulls beside
    the same total and the same split by gas."""
    ids, clients = await _setup(gql, client_as)
    query = (
        "query Q($e: ID!, $m: ID!, $p: PeriodInput!) { footprint(subject: {product: "
        "{enterprise: $e, material: $m}}, period: $p) { total byGas { label value } "
        "byEnterprise { label } byActivity { label } missingFactors { materialCode } "
        "graph { nodes { key } } } }"
    )
    variables = {"e": ids.ent("mill"), "m": ids.mat("coil"), "p": JAN}
    reader = (await clients[AUD](query, variables))["footprint"]
    partner = (await clients[PARTNER](query, variables))["footprint"]
    assert reader["byEnterprise"]
    assert reader["byActivity"]
    assert reader["graph"]["nodes"]
    assert (partner["total"], partner["byGas"]) == (reader["total"], reader["byGas"])
    hidden = ("byEnterprise", "byActivity", "missingFactors", "graph")
    assert {key: partner[key] for key in hidden} == dict.fromkeys(hidden)
