"""Access rules in the domain: who may do what, and which rows each caller's reads return."""

from __future__ import annotations

from datetime import date

import pytest
from factories import World, make_world
from sqlalchemy.ext.asyncio import AsyncSession

from lca.footprint import FootprintRequest, Subject, authorize_footprint
from mfa import reads
from mfa.access import SYSTEM, Action, Caller, Role, Trail, authorize, watching
from mfa.balance import mass_balance
from mfa.errors import PermissionDeniedError
from mfa.ledger import record_flow, record_flows, reverse_flow

PARK, OTHER, MILL, STAMPER = 1, 2, 10, 11

ADMIN = Caller(subject="admin", role=Role.PARK_ADMIN, park_id=PARK)
AUDITOR = Caller(subject="auditor", role=Role.AUDITOR, park_id=PARK)
MILL_CLIENT = Caller(subject="mill", role=Role.ENTERPRISE, park_id=PARK, enterprise_id=MILL)
PARTNER = Caller(subject="partner", role=Role.PARTNER, park_id=PARK, shares=frozenset({(MILL, 5)}))

# (caller, action, park, node) → allowed; written out by hand from the rules in the issue.
RULES = [
    (SYSTEM, Action.ADMINISTER, None, None, True),
    (SYSTEM, Action.RECORD, OTHER, STAMPER, True),
    (ADMIN, Action.ADMINISTER, PARK, None, True),
    (ADMIN, Action.ADMINISTER, None, None, False),  # creating parks, the catalogue
    (ADMIN, Action.ADMINISTER, OTHER, None, False),
    (ADMIN, Action.RECORD, PARK, STAMPER, True),
    (ADMIN, Action.READ, PARK, None, True),
    (ADMIN, Action.AUDIT, PARK, None, True),
    (AUDITOR, Action.READ, PARK, None, True),
    (AUDITOR, Action.READ, PARK, MILL, True),
    (AUDITOR, Action.AUDIT, PARK, None, True),
    (AUDITOR, Action.READ, OTHER, None, False),
    (AUDITOR, Action.RECORD, PARK, MILL, False),
    (AUDITOR, Action.ADMINISTER, PARK, None, False),
    (MILL_CLIENT, Action.RECORD, PARK, MILL, True),
    (MILL_CLIENT, Action.READ, PARK, MILL, True),
    (MILL_CLIENT, Action.RECORD, PARK, STAMPER, False),
    (MILL_CLIENT, Action.READ, PARK, STAMPER, False),
    (MILL_CLIENT, Action.READ, PARK, None, False),
    (MILL_CLIENT, Action.AUDIT, PARK, None, False),
    (MILL_CLIENT, Action.ADMINISTER, PARK, MILL, False),
    (MILL_CLIENT, Action.RECORD, OTHER, MILL, False),
    (PARTNER, Action.READ, PARK, None, False),
    (PARTNER, Action.READ, PARK, MILL, False),
    (PARTNER, Action.RECORD, PARK, MILL, False),
    (PARTNER, Action.READ, None, None, True),  # the material catalogue
]


@pytest.mark.parametrize(("caller", "action", "park", "node", "allowed"), RULES)
def test_authorize_follows_the_role_rules(
    caller: Caller, action: Action, park: int | None, node: int | None, allowed: bool
) -> None:
    if allowed:
        authorize(caller, action, park_id=park, node_id=node)
    else:
        with pytest.raises(PermissionDeniedError):
            authorize(caller, action, park_id=park, node_id=node)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Caller(subject="x", role=Role.OPERATOR, park_id=PARK),
        lambda: Caller(subject="x", role=Role.AUDITOR),
        lambda: Caller(subject="x", role=Role.ENTERPRISE, park_id=PARK),
        lambda: Caller(subject="x", role=Role.AUDITOR, park_id=PARK, enterprise_id=MILL),
        lambda: Caller(subject="x", role=Role.AUDITOR, park_id=PARK, shares=frozenset({(1, 2)})),
        lambda: Caller(subject=" ", role=Role.OPERATOR),
    ],
)
def test_a_caller_whose_fields_contradict_its_role_cannot_exist(build: object) -> None:
    with pytest.raises(ValueError, match=r"caller|park|partner"):
        build()  # type: ignore[operator]


def test_partner_sees_a_product_footprint_only_once_shared() -> None:
    def request(subject: Subject, enterprise: int | None, material: int | None) -> FootprintRequest:
        return FootprintRequest(
            subject=subject,
            park_id=PARK,
            period_start=date(2025, 1, 1),
            period_end=date(2025, 1, 31),
            enterprise_id=enterprise,
            material_id=material,
        )

    authorize_footprint(PARTNER, request(Subject.PRODUCT, MILL, 5))
    for refused in (
        request(Subject.PRODUCT, MILL, 6),
        request(Subject.PRODUCT, STAMPER, 5),
        request(Subject.ENTERPRISE, MILL, None),
        request(Subject.PARK, None, None),
    ):
        with pytest.raises(PermissionDeniedError):
            authorize_footprint(PARTNER, refused)
    authorize_footprint(MILL_CLIENT, request(Subject.ENTERPRISE, MILL, None))
    with pytest.raises(PermissionDeniedError):
        authorize_footprint(MILL_CLIENT, request(Subject.PARK, None, None))


async def _world(session: AsyncSession, caller: Caller) -> tuple[World, World]:
    """Two parks; in the first, four flows of which the mill is a party to two."""
    world = await make_world(session, caller)
    other = await make_world(session, caller, code="other")
    await record_flows(
        session,
        [
            world.flow("mill", "stamper", "steel-coil", "10", "t"),
            world.flow("supplier", "mill", "steel-scrap", "3", "t"),
            world.flow("stamper", "customer", "parts", "8", "t"),
            world.flow("assembler", "landfill", "steel-scrap", "1", "t"),
            other.flow("mill", "customer", "steel-coil", "5", "t"),
        ],
        caller=caller,
    )
    return world, other


def _as(role: Role, world: World, enterprise: str | None = None) -> Caller:
    return Caller(
        subject=f"{role.value}-client",
        role=role,
        park_id=world.park,
        enterprise_id=world.nodes[enterprise] if enterprise else None,
    )


async def _visible(session: AsyncSession, caller: Caller) -> set[tuple[int, int]]:
    page = await reads.flow_page(session, caller=caller, flt=reads.FlowFilter(), first=100)
    return {(f.source.id, f.target.id) for f in page.items}


async def test_each_role_reads_the_flows_of_its_scope(
    session: AsyncSession, caller: Caller
) -> None:
    world, other = await _world(session, caller)
    n = world.nodes
    park_flows = {
        (n["mill"], n["stamper"]),
        (n["supplier"], n["mill"]),
        (n["stamper"], n["customer"]),
        (n["assembler"], n["landfill"]),
    }
    assert await _visible(session, _as(Role.PARK_ADMIN, world)) == park_flows
    assert await _visible(session, _as(Role.AUDITOR, world)) == park_flows
    assert await _visible(session, _as(Role.ENTERPRISE, world, "mill")) == {
        (n["mill"], n["stamper"]),
        (n["supplier"], n["mill"]),
    }
    assert await _visible(session, _as(Role.PARTNER, world)) == set()
    assert await _visible(session, _as(Role.AUDITOR, other)) == {
        (other.nodes["mill"], other.nodes["customer"])
    }
    assert len(await _visible(session, caller)) == 5


async def test_the_directory_shows_a_caller_its_own_park_only(
    session: AsyncSession, caller: Caller
) -> None:
    world, other = await _world(session, caller)
    for role in (Role.PARK_ADMIN, Role.AUDITOR, Role.PARTNER):
        seen = _as(role, world)
        parks = await reads.park_page(session, caller=seen, first=10)
        assert [p.id for p in parks.items] == [world.park]
        nodes = await reads.nodes_by_id(
            session, [world.nodes["stamper"], other.nodes["stamper"]], caller=seen
        )
        assert set(nodes) == {world.nodes["stamper"]}


async def test_an_enterprise_cannot_record_in_another_enterprise_name(
    session: AsyncSession, caller: Caller
) -> None:
    world, _ = await _world(session, caller)
    mill = _as(Role.ENTERPRISE, world, "mill")
    with pytest.raises(PermissionDeniedError):
        await record_flow(
            session, world.flow("stamper", "customer", "parts", "1", "t"), caller=mill
        )
    with pytest.raises(PermissionDeniedError):
        await record_flow(
            session,
            world.flow("mill", "stamper", "steel-coil", "1", "t", reporter="stamper"),
            caller=mill,
        )
    # As a party without naming the reporter, it reports as itself, even as the target.
    recorded = await record_flow(
        session, world.flow("stamper", "mill", "steel-scrap", "2", "t"), caller=mill
    )
    rows = await reads.flows_by_id(session, [recorded.flow_id], caller=mill)
    assert rows[recorded.flow_id].reporting_party_id == world.nodes["mill"]
    assert rows[recorded.flow_id].recorded_by == "enterprise-client"


async def test_an_enterprise_reverses_only_its_own_reports(
    session: AsyncSession, caller: Caller
) -> None:
    world, _ = await _world(session, caller)
    stamper_flow = (
        await reads.flow_page(
            session,
            caller=_as(Role.ENTERPRISE, world, "stamper"),
            flt=reads.FlowFilter(enterprise_id=world.nodes["customer"]),
            first=10,
        )
    ).items[0]
    with pytest.raises(PermissionDeniedError):
        await reverse_flow(
            session, stamper_flow.id, caller=_as(Role.ENTERPRISE, world, "mill"), reason="no"
        )
    await reverse_flow(
        session, stamper_flow.id, caller=_as(Role.ENTERPRISE, world, "stamper"), reason="typo"
    )


async def test_auditors_and_partners_write_nothing(session: AsyncSession, caller: Caller) -> None:
    world, _ = await _world(session, caller)
    for role in (Role.AUDITOR, Role.PARTNER):
        with pytest.raises(PermissionDeniedError):
            await record_flow(
                session,
                world.flow("mill", "landfill", "steel-scrap", "1", "t"),
                caller=_as(role, world),
            )


async def test_an_enterprise_reads_its_own_balance_only(
    session: AsyncSession, caller: Caller
) -> None:
    world, _ = await _world(session, caller)
    mill = _as(Role.ENTERPRISE, world, "mill")
    jan = {"period_start": date(2025, 1, 1), "period_end": date(2025, 1, 31), "tolerance": 0.05}
    own = await mass_balance(session, caller=mill, enterprise_id=world.nodes["mill"], **jan)
    # Inputs: 3 t scrap; outputs: 10 t coil (the fixture's flows, in kg).
    assert own.material.inputs == pytest.approx(3000.0)
    assert own.material.outputs == pytest.approx(10_000.0)
    with pytest.raises(PermissionDeniedError):
        await mass_balance(session, caller=mill, enterprise_id=world.nodes["stamper"], **jan)


async def test_the_trail_notes_refusals_and_granted_writes_but_not_reads(
    session: AsyncSession, caller: Caller
) -> None:
    world, _ = await _world(session, caller)
    trail = Trail()
    mill = _as(Role.ENTERPRISE, world, "mill")
    with watching(trail):
        await reads.flow_page(session, caller=mill, flt=reads.FlowFilter(), first=10)
        await record_flow(
            session, world.flow("mill", "landfill", "steel-scrap", "1", "t"), caller=mill
        )
        with pytest.raises(PermissionDeniedError):
            await record_flow(
                session, world.flow("stamper", "landfill", "steel-scrap", "1", "t"), caller=mill
            )
    noted = [(d.action, d.node_id, d.allowed) for d in trail.decisions]
    assert noted == [
        (Action.RECORD, world.nodes["mill"], True),
        (Action.RECORD, world.nodes["stamper"], False),
    ]
    assert [d.caller for d in trail.take(allowed=False)] == [mill]
    assert [d.allowed for d in trail.decisions] == [True]
