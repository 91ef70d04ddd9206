"""Following material along the chain: exact edge sets and depths worked out by hand.

The park of ``make_world`` plus a coating line, flows of January 2025 unless marked::

    f1  supplier  → mill       scrap 20 t      f7   stamper   → mill       scrap 3 t (the loop)
    f2  grid      → mill       power           f8   assembler → customer   parts 12 t
    f3  mill      → coater     coil 15 t       f9   grid      → stamper    power
    f4  coater    → stamper    coil 15 t       f10  mill      → customer   coil 2 t
    f5  coater    → landfill   solvent         feb  mill      → coater     coil 9 t, February
    f6  stamper   → assembler  parts 12 t      wrong coater → assembler coil 1 t, reversed

Were ``wrong`` (or its ``reversal``) followed, the assembler would be reached a level early.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from factories import FEB, JAN, World, make_world
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from mfa.access import Caller
from mfa.chain import Chain, ChainDirection, follow_chain, output_flow_ids
from mfa.errors import MfaError, NotFoundError, PeriodError, ReversalError
from mfa.ledger import record_flows, reverse_flow
from mfa.registry import NodeCreate, create_node

DOWN = ChainDirection.DOWNSTREAM
UP = ChainDirection.UPSTREAM


@dataclass
class Park:
    world: World
    flow: dict[str, int]  # name in the module docstring's drawing → flow id

    def depths(self, chain: Chain) -> dict[str, int]:
        """The chain's edges as {flow name: depth}; fails on a flow not named here."""
        names = {flow_id: name for name, flow_id in self.flow.items()}
        return {names[e.flow_id]: e.depth for e in chain.edges}


async def _park(session: AsyncSession, caller: Caller) -> Park:
    world = await make_world(session, caller)
    coater = await create_node(
        session,
        NodeCreate(park_id=world.park, code="coater", name="Coating line", isic_code="2592"),
        caller=caller,
    )
    assert coater.id is not None
    world.nodes["coater"] = coater.id
    named = {
        "f1": world.flow("supplier", "mill", "steel-scrap", "20", "t"),
        "f2": world.flow("grid", "mill", "electricity", "5000", "kWh"),
        "f3": world.flow("mill", "coater", "steel-coil", "15", "t"),
        "f4": world.flow("coater", "stamper", "steel-coil", "15", "t"),
        "f5": world.flow("coater", "landfill", "solvent", "0.2", "t"),
        "f6": world.flow("stamper", "assembler", "parts", "12", "t"),
        "f7": world.flow("stamper", "mill", "steel-scrap", "3", "t"),
        "f8": world.flow("assembler", "customer", "parts", "12", "t"),
        "f9": world.flow("grid", "stamper", "electricity", "800", "kWh"),
        "f10": world.flow("mill", "customer", "steel-coil", "2", "t"),
        "feb": world.flow("mill", "coater", "steel-coil", "9", "t", period=FEB),
        "wrong": world.flow("coater", "assembler", "steel-coil", "1", "t"),
    }
    batch = await record_flows(session, list(named.values()), caller=caller)
    assert not any(entry.linked for entry in batch.entries)
    flow = {name: entry.flow_id for name, entry in zip(named, batch.entries, strict=True)}
    flow["reversal"] = await reverse_flow(
        session, flow["wrong"], caller=caller, reason="went to the stamper, not the assembler"
    )
    return Park(world, flow)


async def test_downstream_reaches_each_flow_once_at_its_smallest_depth(
    engine: AsyncEngine,
    session: AsyncSession,
    caller: Caller,
    count_statements: Callable[[AsyncEngine], list[str]],
) -> None:
    park = await _park(session, caller)
    statements = count_statements(engine)

    chain = await follow_chain(
        session, caller=caller, start_flow_ids=[park.flow["f3"]], direction=DOWN, max_depth=10
    )

    # 1: the start. 2: out of the coater. 3: out of the stamper (parts on, scrap back to the
    # mill). 4: out of the assembler, and out of the mill: f10 is new, f3 is not repeated.
    # Not reached: inputs (f1, f2, f9), February (feb), the reversed flow and its reversal
    # (through them the assembler would be reached at depth 2 and f8 at depth 3).
    assert park.depths(chain) == {
        "f3": 1,
        "f4": 2,
        "f5": 2,
        "f6": 3,
        "f7": 3,
        "f8": 4,
        "f10": 4,
    }
    assert [(e.depth, e.flow_id) for e in chain.edges] == sorted(
        (e.depth, e.flow_id) for e in chain.edges
    )
    assert not chain.truncated
    assert (chain.period_start, chain.period_end) == JAN  # the start flow's period
    nodes = park.world.nodes
    assert chain.node_ids == tuple(
        sorted(nodes[n] for n in ("mill", "coater", "stamper", "landfill", "assembler", "customer"))
    )
    f4 = next(e for e in chain.edges if e.flow_id == park.flow["f4"])
    assert (f4.source_id, f4.target_id, f4.quantity, f4.unit) == (
        nodes["coater"],
        nodes["stamper"],
        15_000.0,
        "kg",
    )
    # the start flows, then levels 2, 3 and 4; the last frontier is empty, so no probe
    assert len(statements) == 1 + 3


async def test_upstream_mirrors_downstream_and_stops_at_boundary_nodes(
    engine: AsyncEngine,
    session: AsyncSession,
    caller: Caller,
    count_statements: Callable[[AsyncEngine], list[str]],
) -> None:
    park = await _park(session, caller)
    statements = count_statements(engine)

    chain = await follow_chain(
        session, caller=caller, start_flow_ids=[park.flow["f8"]], direction=UP, max_depth=10
    )

    # 2: into the assembler (not the reversed coil). 3: into the stamper. 4: into the coater
    # (not February's). 5: into the mill, including the loop's scrap from the stamper, which
    # is not expanded again; supplier and grid are boundary nodes.
    assert park.depths(chain) == {
        "f8": 1,
        "f6": 2,
        "f4": 3,
        "f9": 3,
        "f3": 4,
        "f1": 5,
        "f2": 5,
        "f7": 5,
    }
    assert not chain.truncated
    assert len(statements) == 1 + 4


@pytest.mark.parametrize(
    ("max_depth", "expected", "truncated", "statement_count"),
    [
        # levels queried: 2..max_depth, plus a LIMIT 1 probe when a frontier is left
        (1, {"f3": 1}, True, 1 + 0 + 1),
        (2, {"f3": 1, "f4": 2, "f5": 2}, True, 1 + 1 + 1),
        (3, {"f3": 1, "f4": 2, "f5": 2, "f6": 3, "f7": 3}, True, 1 + 2 + 1),
        (4, {"f3": 1, "f4": 2, "f5": 2, "f6": 3, "f7": 3, "f8": 4, "f10": 4}, False, 1 + 3),
    ],
)
async def test_max_depth_cuts_the_chain_and_says_so(
    engine: AsyncEngine,
    session: AsyncSession,
    caller: Caller,
    count_statements: Callable[[AsyncEngine], list[str]],
    max_depth: int,
    expected: dict[str, int],
    truncated: bool,
    statement_count: int,
) -> None:
    park = await _park(session, caller)
    statements = count_statements(engine)

    chain = await follow_chain(
        session,
        caller=caller,
        start_flow_ids=[park.flow["f3"]],
        direction=DOWN,
        max_depth=max_depth,
    )

    assert park.depths(chain) == expected
    assert chain.truncated is truncated
    assert chain.max_depth == max_depth
    assert len(statements) == statement_count


async def test_flows_already_in_the_chain_do_not_count_as_beyond_it(
    engine: AsyncEngine,
    session: AsyncSession,
    caller: Caller,
    count_statements: Callable[[AsyncEngine], list[str]],
) -> None:
    park = await _park(session, caller)
    statements = count_statements(engine)

    # The assembler's only output is f8, itself a start flow; f8 ends at a customer.
    chain = await follow_chain(
        session,
        caller=caller,
        start_flow_ids=[park.flow["f8"], park.flow["f6"], park.flow["f6"]],
        direction=DOWN,
        max_depth=1,
    )

    assert park.depths(chain) == {"f6": 1, "f8": 1}
    assert chain.start_flow_ids == tuple(sorted((park.flow["f6"], park.flow["f8"])))
    assert not chain.truncated
    assert len(statements) == 1 + 1  # the start flows, the probe


async def test_chain_into_a_boundary_node_ends_with_its_start(
    engine: AsyncEngine,
    session: AsyncSession,
    caller: Caller,
    count_statements: Callable[[AsyncEngine], list[str]],
) -> None:
    park = await _park(session, caller)
    statements = count_statements(engine)

    chain = await follow_chain(
        session, caller=caller, start_flow_ids=[park.flow["f5"]], direction=DOWN, max_depth=5
    )

    assert park.depths(chain) == {"f5": 1}  # landfill passes nothing on
    assert not chain.truncated
    assert len(statements) == 1


async def test_a_wider_period_follows_more_flows(session: AsyncSession, caller: Caller) -> None:
    park = await _park(session, caller)

    chain = await follow_chain(
        session,
        caller=caller,
        start_flow_ids=[park.flow["f3"]],
        direction=DOWN,
        max_depth=10,
        period_start=JAN[0],
        period_end=FEB[1],
    )

    # February's coil leaves the mill when the mill is expanded, at depth 4; the coater it
    # goes to was expanded already.
    assert park.depths(chain) == {
        "f3": 1,
        "f4": 2,
        "f5": 2,
        "f6": 3,
        "f7": 3,
        "f8": 4,
        "f10": 4,
        "feb": 4,
    }
    assert (chain.period_start, chain.period_end) == (JAN[0], FEB[1])


async def test_chain_from_an_enterprise_and_a_material(
    session: AsyncSession, caller: Caller
) -> None:
    park = await _park(session, caller)
    nodes, materials = park.world.nodes, park.world.materials

    scrap_out = await output_flow_ids(
        session,
        caller=caller,
        enterprise_id=nodes["stamper"],
        material_id=materials["steel-scrap"],
        direction=DOWN,
        period_start=JAN[0],
        period_end=JAN[1],
    )
    assert scrap_out == [park.flow["f7"]]
    chain = await follow_chain(
        session, caller=caller, start_flow_ids=scrap_out, direction=DOWN, max_depth=10
    )
    # mill's outputs, coater's outputs, stamper's outputs (f7 already there), assembler's
    assert park.depths(chain) == {
        "f7": 1,
        "f3": 2,
        "f10": 2,
        "f4": 3,
        "f5": 3,
        "f6": 4,
        "f8": 5,
    }

    parts_in = await output_flow_ids(
        session,
        caller=caller,
        enterprise_id=nodes["assembler"],
        material_id=materials["parts"],
        direction=UP,
        period_start=JAN[0],
        period_end=JAN[1],
    )
    assert parts_in == [park.flow["f6"]]
    # the coil booked to the assembler was reversed: nothing to start from
    coil_in = await output_flow_ids(
        session,
        caller=caller,
        enterprise_id=nodes["assembler"],
        material_id=materials["steel-coil"],
        direction=UP,
        period_start=JAN[0],
        period_end=JAN[1],
    )
    assert coil_in == []
    coil_out_in_feb = await output_flow_ids(
        session,
        caller=caller,
        enterprise_id=nodes["mill"],
        material_id=materials["steel-coil"],
        direction=DOWN,
        period_start=FEB[0],
        period_end=FEB[1],
    )
    assert coil_out_in_feb == [park.flow["feb"]]


@pytest.mark.parametrize("name", ["wrong", "reversal"])
async def test_reversed_flow_or_reversal_cannot_start_a_chain(
    session: AsyncSession, caller: Caller, name: str
) -> None:
    park = await _park(session, caller)
    with pytest.raises(ReversalError) as raised:
        await follow_chain(
            session, caller=caller, start_flow_ids=[park.flow[name]], direction=DOWN, max_depth=3
        )
    assert raised.value.field == ("start",)


async def test_unknown_start_flow_is_not_found(session: AsyncSession, caller: Caller) -> None:
    park = await _park(session, caller)
    with pytest.raises(NotFoundError) as raised:
        await follow_chain(
            session,
            caller=caller,
            start_flow_ids=[park.flow["f3"], 999_999],
            direction=DOWN,
            max_depth=3,
        )
    assert raised.value.field == ("start",)
    assert "999999" in raised.value.message


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"max_depth": 0}, MfaError, "maxDepth"),
        ({"max_depth": 101}, MfaError, "maxDepth"),
        ({"start_flow_ids": []}, MfaError, "start"),
        ({"period_start": FEB[0], "period_end": JAN[1]}, PeriodError, "periodEnd"),
        ({"period_start": FEB[0]}, PeriodError, "periodEnd"),  # after the start flow's end
    ],
)
async def test_bad_chain_request_is_refused_naming_the_field(
    session: AsyncSession,
    caller: Caller,
    kwargs: dict[str, object],
    error: type[MfaError],
    field: str,
) -> None:
    park = await _park(session, caller)
    args: dict[str, object] = {
        "start_flow_ids": [park.flow["f3"]],
        "direction": DOWN,
        "max_depth": 3,
    } | kwargs
    with pytest.raises(error) as raised:
        await follow_chain(session, caller=caller, **args)  # type: ignore[arg-type]
    assert raised.value.field == (field,)
