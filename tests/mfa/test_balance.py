"""The mass balance of an enterprise: each figure against a calculation done by hand here.

The stamping works of ``make_world`` in January 2025 is the running example: 10 t of coil in
from the mill, 8 t of parts out to the assembler, 1.5 t of scrap back to the mill.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from factories import FEB, JAN, World, make_world
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from mfa.access import Caller
from mfa.balance import BalanceGroup, BalanceLine, MassBalance, mass_balance, park_balances
from mfa.errors import NotFoundError, PeriodError, QuantityError
from mfa.ledger import StockCreate, record_flow, record_flows, record_stocks, reverse_flow
from mfa.models import MaterialKind, NodeKind
from mfa.reads import FlowFilter, flow_page
from mfa.registry import MaterialCreate, NodeCreate, create_material, create_node
from mfa.units import Dimension

DEC31 = date(2024, 12, 31)
JAN31 = JAN[1]


async def _balance(
    session: AsyncSession,
    caller: Caller,
    world: World,
    *,
    enterprise: str = "stamper",
    period: tuple[date, date] = JAN,
    tolerance: float = 0.02,
) -> MassBalance:
    return await mass_balance(
        session,
        caller=caller,
        enterprise_id=world.nodes[enterprise],
        period_start=period[0],
        period_end=period[1],
        tolerance=tolerance,
    )


def _line(balance: MassBalance, code: str) -> BalanceLine:
    (line,) = [line for line in balance.lines if line.code == code]
    return line


async def _stock(
    session: AsyncSession,
    caller: Caller,
    world: World,
    readings: list[tuple[str, date, str]],
    enterprise: str = "stamper",
) -> None:
    """Readings (material, end of day, tonnes) of one enterprise, recorded in this order."""
    await record_stocks(
        session,
        [
            StockCreate(world.nodes[enterprise], world.materials[code], on, tonnes, "t")
            for code, on, tonnes in readings
        ],
        caller=caller,
    )


async def _stamper_january(session: AsyncSession, caller: Caller, world: World) -> None:
    await record_flows(
        session,
        [
            world.flow("mill", "stamper", "steel-coil", "10", "t"),
            world.flow("stamper", "assembler", "parts", "8", "t"),
            world.flow("stamper", "mill", "steel-scrap", "1.5", "t"),
        ],
        caller=caller,
    )


async def test_residual_is_inputs_minus_outputs_minus_stock_change_by_hand(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    await _stamper_january(session, caller, world)
    # The stamper's own report of the coil (10.1 t) is a confirmation, not a second input.
    confirmation = await record_flow(
        session,
        world.flow("mill", "stamper", "steel-coil", "10.1", "t", reporter="stamper"),
        caller=caller,
    )
    assert confirmation.linked
    await _stock(
        session,
        caller,
        world,
        [
            ("steel-coil", DEC31, "2"),
            ("steel-coil", JAN31, "2.3"),
            ("parts", DEC31, "0"),
            ("parts", JAN31, "0"),
            ("steel-scrap", DEC31, "0"),
            ("steel-scrap", JAN31, "0"),
        ],
    )

    balance = await _balance(session, caller, world)

    assert [line.code for line in balance.lines] == ["parts", "steel-coil", "steel-scrap"]
    coil = _line(balance, "steel-coil")
    assert (coil.inputs, coil.outputs) == (10_000.0, 0.0)
    assert (coil.opening_stock, coil.opening_stock_on) == (2_000.0, DEC31)
    assert (coil.closing_stock, coil.closing_stock_on) == (2_300.0, JAN31)
    assert coil.stock_change == pytest.approx(300.0)
    assert coil.net == pytest.approx(10_000 - 0 - 300)
    assert (coil.unit, coil.group, coil.kind) == ("kg", BalanceGroup.MATERIAL, MaterialKind.PRODUCT)
    parts = _line(balance, "parts")
    assert (parts.inputs, parts.outputs, parts.stock_change, parts.net) == (0, 8_000, 0, -8_000)
    scrap = _line(balance, "steel-scrap")
    assert (scrap.inputs, scrap.outputs, scrap.stock_change, scrap.net) == (0, 1_500, 0, -1_500)

    # inputs 10 t; outputs 8 + 1.5 = 9.5 t; stock change 2.3 − 2 = 0.3 t
    # residual = 10 − 9.5 − 0.3 = 0.2 t; throughput = max(10, 9.5) = 10 t; relative = 0.02
    total = balance.material
    assert (total.inputs, total.outputs) == (10_000.0, 9_500.0)
    assert total.stock_change == pytest.approx(300.0)
    assert total.residual == pytest.approx(200.0)
    assert total.throughput == 10_000.0
    assert total.relative_residual == pytest.approx(0.02)
    assert total.stock_known
    assert total.unit == "kg"
    # 3 ledger entries; the confirmation is not one.
    assert balance.flow_count == 3
    page = await flow_page(
        session,
        caller=caller,
        flt=FlowFilter(
            enterprise_id=world.nodes["stamper"], period_start=JAN[0], period_end=JAN[1]
        ),
        first=1,
    )
    assert page.total_count == balance.flow_count


async def test_opening_is_the_reading_in_force_the_day_before_and_closing_on_the_last_day(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    await _stamper_january(session, caller, world)
    await _stock(
        session,
        caller,
        world,
        [
            ("steel-coil", date(2024, 12, 15), "9"),  # older than the Dec 31 reading
            ("steel-coil", DEC31, "1"),
            ("steel-coil", DEC31, "2"),  # same day, recorded later: in force
            ("steel-coil", date(2025, 1, 1), "7"),  # first day of the period: not the opening
            ("steel-coil", JAN31, "2.5"),
            ("steel-coil", JAN31, "2.3"),  # same day, recorded later: in force
            ("steel-coil", FEB[1], "5"),  # after the period
        ],
    )

    coil = _line(await _balance(session, caller, world), "steel-coil")

    assert (coil.opening_stock, coil.closing_stock) == (2_000.0, 2_300.0)
    assert coil.stock_change == pytest.approx(300.0)


async def test_closing_reading_from_before_the_period_means_no_change(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    await _stamper_january(session, caller, world)
    await _stock(session, caller, world, [("steel-coil", date(2024, 12, 20), "2")])

    coil = _line(await _balance(session, caller, world), "steel-coil")

    # The Dec 20 reading is the last one known at both ends: 2 t − 2 t.
    assert (coil.opening_stock, coil.closing_stock, coil.stock_change) == (2_000, 2_000, 0)
    assert coil.opening_stock_on == coil.closing_stock_on == date(2024, 12, 20)


async def test_reversal_removes_its_flow_from_the_balance(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    await _stamper_january(session, caller, world)
    wrong = await record_flow(
        session, world.flow("mill", "stamper", "steel-coil", "5", "t"), caller=caller
    )
    await reverse_flow(session, wrong.flow_id, caller=caller, reason="booked twice")

    balance = await _balance(session, caller, world)

    # 10 t + 5 t − 5 t
    assert _line(balance, "steel-coil").inputs == 10_000.0
    assert balance.material.inputs == 10_000.0
    assert balance.flow_count == 3 + 2  # the entry and its reversal are both counted entries


async def test_unknown_stock_change_counts_as_zero_and_is_flagged(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    await _stamper_january(session, caller, world)
    # A closing reading but no opening one: the change is unknown, not 2.3 t − 0.
    await _stock(session, caller, world, [("steel-coil", JAN31, "2.3")])

    balance = await _balance(session, caller, world)

    coil = _line(balance, "steel-coil")
    assert (coil.opening_stock, coil.closing_stock, coil.stock_change) == (None, 2_300.0, None)
    assert coil.net == 10_000.0
    # residual = 10 − 9.5 − 0 = 0.5 t; relative = 0.5 / 10 = 0.05
    assert not balance.material.stock_known
    assert balance.material.stock_change == 0.0
    assert balance.material.residual == pytest.approx(500.0)
    assert balance.material.relative_residual == pytest.approx(0.05)
    assert not balance.material.within_tolerance


async def test_balance_beyond_tolerance_is_not_within_it(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    await _stamper_january(session, caller, world)
    await _stock(session, caller, world, [("steel-coil", DEC31, "2"), ("steel-coil", JAN31, "2.3")])
    # relative residual 0.02 (see the hand calculation above); parts and scrap stocks unknown
    at_limit = await _balance(session, caller, world, tolerance=0.02)
    tighter = await _balance(session, caller, world, tolerance=0.019)

    assert at_limit.material.relative_residual == pytest.approx(0.02)
    assert at_limit.material.within_tolerance
    assert not tighter.material.within_tolerance
    assert tighter.tolerance == 0.019


async def test_water_is_totalled_apart_from_the_mass_balance(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    wwtp = await create_node(
        session,
        NodeCreate(
            park_id=world.park, code="wwtp", name="Central WWTP", kind=NodeKind.WASTEWATER_TREATMENT
        ),
        caller=caller,
    )
    assert wwtp.id is not None
    world.nodes["wwtp"] = wwtp.id
    await _stamper_january(session, caller, world)
    await record_flows(
        session,
        [
            world.flow("supplier", "stamper", "water", "120", "m3"),
            world.flow("stamper", "wwtp", "wastewater", "100000", "L"),
        ],
        caller=caller,
    )

    balance = await _balance(session, caller, world)

    assert _line(balance, "water").group is BalanceGroup.WATER
    assert _line(balance, "wastewater").group is BalanceGroup.WATER  # a waste, but in m3
    # water: 120 m3 in, 100 m3 out, no stock readings: residual 20 m3, relative 20 / 120
    water = balance.water
    assert (water.unit, water.inputs) == ("m3", 120.0)
    assert water.outputs == pytest.approx(100.0)
    assert water.residual == pytest.approx(20.0)
    assert water.relative_residual == pytest.approx(20 / 120)
    assert not water.stock_known
    assert not water.within_tolerance
    # the mass balance is the coil, parts and scrap only: 10 t in, 9.5 t out
    assert (balance.material.inputs, balance.material.outputs) == (10_000.0, 9_500.0)


async def test_energy_and_emissions_are_listed_but_not_in_the_totals(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    air = await create_node(
        session,
        NodeCreate(park_id=world.park, code="air", name="Atmosphere", kind=NodeKind.ATMOSPHERE),
        caller=caller,
    )
    co2 = await create_material(
        session,
        MaterialCreate(
            code="co2", name="Carbon dioxide", kind=MaterialKind.EMISSION, dimension=Dimension.MASS
        ),
        caller=caller,
    )
    assert air.id is not None
    assert co2.id is not None
    world.nodes["air"], world.materials["co2"] = air.id, co2.id
    await _stamper_january(session, caller, world)
    await record_flows(
        session,
        [
            world.flow("grid", "stamper", "electricity", "5", "MWh"),
            world.flow("stamper", "air", "co2", "300", "kg"),
        ],
        caller=caller,
    )

    balance = await _balance(session, caller, world)

    power = _line(balance, "electricity")
    assert (power.inputs, power.unit, power.group) == (5_000.0, "kWh", None)
    emitted = _line(balance, "co2")
    assert (emitted.outputs, emitted.unit, emitted.group) == (300.0, "kg", None)
    # unchanged by 5 MWh in and 300 kg of CO2 out
    assert (balance.material.inputs, balance.material.outputs) == (10_000.0, 9_500.0)
    assert (balance.water.inputs, balance.water.outputs) == (0.0, 0.0)
    assert balance.flow_count == 5


async def test_flows_outside_the_period_are_left_out(session: AsyncSession, caller: Caller) -> None:
    world = await make_world(session, caller)
    await _stamper_january(session, caller, world)
    await record_flows(
        session,
        [
            world.flow("mill", "stamper", "steel-coil", "7", "t", period=FEB),
            # straddles the end of January: not inside [Jan 1, Jan 31]
            world.flow(
                "mill",
                "stamper",
                "steel-coil",
                "3",
                "t",
                period=(date(2025, 1, 15), date(2025, 2, 14)),
            ),
        ],
        caller=caller,
    )

    january = await _balance(session, caller, world)
    february = await _balance(session, caller, world, period=FEB)
    both = await _balance(session, caller, world, period=(JAN[0], FEB[1]))

    assert january.material.inputs == 10_000.0
    assert january.flow_count == 3
    assert february.material.inputs == 7_000.0
    assert both.material.inputs == 10_000 + 7_000 + 3_000


async def test_period_without_flows_balances_unless_stock_moved(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    await _stamper_january(session, caller, world)

    empty = await _balance(session, caller, world, period=FEB)

    assert empty.lines == ()
    assert empty.flow_count == 0
    for total in (empty.material, empty.water):
        assert (total.inputs, total.outputs, total.stock_change, total.residual) == (0, 0, 0, 0)
        assert total.throughput == 0
        assert total.relative_residual is None
        assert total.within_tolerance
        assert total.stock_known

    # Coil stock rising by 0.3 t with nothing delivered does not balance.
    await _stock(
        session, caller, world, [("steel-coil", JAN31, "2"), ("steel-coil", FEB[1], "2.3")]
    )
    moved = await _balance(session, caller, world, period=FEB)

    (coil,) = moved.lines
    assert (coil.code, coil.inputs, coil.outputs) == ("steel-coil", 0, 0)
    assert coil.stock_change == pytest.approx(300.0)
    assert moved.material.residual == pytest.approx(-300.0)
    assert moved.material.relative_residual is None
    assert not moved.material.within_tolerance
    assert moved.material.stock_known  # nothing moved whose stock change is unknown


async def test_boundary_node_or_unknown_id_is_not_found(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    for enterprise_id in (world.nodes["supplier"], 999_999):
        with pytest.raises(NotFoundError) as raised:
            await mass_balance(
                session,
                caller=caller,
                enterprise_id=enterprise_id,
                period_start=JAN[0],
                period_end=JAN[1],
                tolerance=0.02,
            )
        assert raised.value.field == ("enterprise",)


async def test_period_ending_before_it_starts_is_refused(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    with pytest.raises(PeriodError) as raised:
        await _balance(session, caller, world, period=(JAN[1], JAN[0]))
    assert raised.value.field == ("periodEnd",)


@pytest.mark.parametrize("tolerance", [-0.01, float("nan"), float("inf")])
async def test_unusable_tolerance_is_refused(
    session: AsyncSession, caller: Caller, tolerance: float
) -> None:
    world = await make_world(session, caller)
    with pytest.raises(QuantityError) as raised:
        await _balance(session, caller, world, tolerance=tolerance)
    assert raised.value.field == ("tolerance",)


async def test_balance_takes_three_statements_whatever_the_number_of_flows(
    engine: AsyncEngine,
    session: AsyncSession,
    caller: Caller,
    count_statements: Callable[[AsyncEngine], list[str]],
) -> None:
    world = await make_world(session, caller)
    await record_flows(
        session,
        [world.flow("supplier", "stamper", "steel-coil", "1", "t") for _ in range(40)]
        + [world.flow("stamper", "assembler", "parts", "0.5", "t") for _ in range(40)],
        caller=caller,
    )
    await _stock(session, caller, world, [("steel-coil", DEC31, "2"), ("steel-coil", JAN31, "3")])
    statements = count_statements(engine)

    balance = await _balance(session, caller, world)

    assert len(statements) == 3  # the enterprise, the flow sums, the stock readings
    assert balance.flow_count == 80
    # 40 t in, 20 t out, stock +1 t: residual 19 t
    assert balance.material.residual == pytest.approx(19_000.0)


async def test_park_balances_judge_each_enterprise_month_as_mass_balance_does(
    session: AsyncSession, caller: Caller
) -> None:
    """The stamper's January above, plus a February with a planted 20% residual:
    February in 10 t, out 7.5 t, stock 2.3 → 2.3 t: residual 2.5 t, 25% of 10 t."""
    world = await make_world(session, caller)
    await _stamper_january(session, caller, world)
    await record_flows(
        session,
        [
            world.flow("mill", "stamper", "steel-coil", "10", "t", period=FEB),
            world.flow("stamper", "assembler", "parts", "7.5", "t", period=FEB),
        ],
        caller=caller,
    )
    await _stock(
        session,
        caller,
        world,
        [("steel-coil", DEC31, "2"), ("steel-coil", JAN31, "2.3"), ("steel-coil", FEB[1], "2.3")],
    )
    found = await park_balances(
        session,
        caller=caller,
        park_id=world.park,
        period_start=JAN[0],
        period_end=FEB[1],
        tolerance=0.05,
    )
    stamper = {b.period_start: b for b in found if b.enterprise_id == world.nodes["stamper"]}
    january, february = stamper[JAN[0]].total, stamper[FEB[0]].total
    assert january.residual == pytest.approx(10_000 - 9_500 - 300)
    assert january.within_tolerance
    assert february.residual == pytest.approx(10_000 - 7_500 - 0)
    assert february.relative_residual == pytest.approx(0.25)
    assert not february.within_tolerance
    for balance in found:  # the same figures, line by line, as each enterprise's own balance
        alone = await mass_balance(
            session,
            caller=caller,
            enterprise_id=balance.enterprise_id,
            period_start=balance.period_start,
            period_end=balance.period_end,
            tolerance=0.05,
        )
        assert balance.total == alone.material
        assert balance.lines == tuple(
            line for line in alone.lines if line.group is BalanceGroup.MATERIAL
        )
