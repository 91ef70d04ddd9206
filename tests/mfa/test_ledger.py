"""The ledger: canonical units, transfer linking, reversals, all-or-nothing batches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from factories import FEB, JAN, World, make_world
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from mfa.access import Caller
from mfa.db import session_factory
from mfa.errors import (
    BatchValidationError,
    ConfirmationError,
    DimensionError,
    DuplicateError,
    MfaError,
    NotFoundError,
    PeriodError,
    QuantityError,
    ReversalError,
    SelfFlowError,
    UnitError,
)
from mfa.ledger import (
    CheckedFlow,
    FlowChecker,
    FlowCreate,
    append_checked,
    confirm_flow,
    flow_checker,
    record_flow,
    record_flows,
    reverse_flow,
)
from mfa.models import BatchKind, Flow, FlowConfirmation, RecordBatch

flows = Flow.__table__  # type: ignore[attr-defined]
confirmations = FlowConfirmation.__table__  # type: ignore[attr-defined]


async def _count(session: AsyncSession, table: sa.Table) -> int:
    return int((await session.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def test_quantity_is_stored_in_canonical_unit_and_reported_figure_kept(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    recorded = await record_flow(
        session, world.flow("supplier", "mill", "steel-coil", "12.5", "t"), caller=caller
    )
    row = (await session.execute(sa.select(flows).where(flows.c.id == recorded.flow_id))).one()
    assert row.quantity == 12_500.0
    assert row.unit == "kg"
    assert (row.reported_quantity, row.reported_unit) == ("12.5", "t")
    assert row.reporting_party_id == world.nodes["mill"]  # the enterprise end by default
    assert row.recorded_by == caller.subject


async def test_volume_and_energy_units_convert_to_m3_and_kwh(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    water = await record_flow(
        session, world.flow("supplier", "mill", "water", "2500", "L"), caller=caller
    )
    power = await record_flow(
        session, world.flow("grid", "mill", "electricity", "3.6", "GJ"), caller=caller
    )
    got = dict((await session.execute(sa.select(flows.c.id, flows.c.quantity))).all())
    assert got[water.flow_id] == pytest.approx(2.5)
    assert got[power.flow_id] == pytest.approx(1000.0)  # 3.6 GJ / 3.6 MJ per kWh


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"quantity": "-1"}, QuantityError, "quantity"),
        ({"quantity": "NaN"}, QuantityError, "quantity"),
        ({"quantity": "Infinity"}, QuantityError, "quantity"),
        ({"quantity": "lots"}, QuantityError, "quantity"),
        ({"unit": "bananas"}, UnitError, "unit"),
        ({"unit": "ton"}, UnitError, "unit"),
        ({"unit": "m3"}, DimensionError, "unit"),
        ({"source": "mill"}, SelfFlowError, "target"),
        ({"period": (JAN[1], JAN[0])}, PeriodError, "periodEnd"),
        ({"reporter": "stamper"}, MfaError, "reportingParty"),
        ({"reporter": "supplier"}, MfaError, "reportingParty"),
        ({"source": "supplier", "target": "landfill"}, MfaError, "source"),
    ],
)
async def test_bad_flow_is_refused_naming_the_field_and_nothing_is_written(
    session: AsyncSession,
    caller: Caller,
    change: dict[str, object],
    error: type[MfaError],
    field: str,
) -> None:
    world = await make_world(session, caller)
    args: dict[str, object] = {
        "source": "supplier",
        "target": "mill",
        "material": "steel-coil",
        "quantity": "10",
        "unit": "t",
    } | change
    with pytest.raises(error) as raised:
        await record_flow(session, world.flow(**args), caller=caller)  # type: ignore[arg-type]
    assert raised.value.field[-1] == field
    assert await _count(session, flows) == 0


async def test_unknown_material_or_node_is_not_found(session: AsyncSession, caller: Caller) -> None:
    world = await make_world(session, caller)
    world.materials["ghost"] = 999_999
    world.nodes["nowhere"] = 999_999
    with pytest.raises(NotFoundError) as raised:
        await record_flow(session, world.flow("supplier", "mill", "ghost", "1"), caller=caller)
    assert raised.value.field == ("material",)
    with pytest.raises(NotFoundError) as raised:
        await record_flow(session, world.flow("nowhere", "mill", "steel-coil", "1"), caller=caller)
    assert raised.value.field == ("source",)


async def test_receivers_report_confirms_the_senders_flow_within_tolerance(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    sent = await record_flow(
        session, world.flow("mill", "stamper", "steel-coil", "100", "t"), caller=caller
    )
    received = await record_flow(
        session,
        world.flow("mill", "stamper", "steel-coil", "99000", "kg", reporter="stamper"),
        caller=caller,
        tolerance=0.02,
    )
    assert received.flow_id == sent.flow_id
    assert received.linked
    assert await _count(session, flows) == 1  # the transfer is counted once
    conf = (await session.execute(sa.select(confirmations))).one()
    assert conf.status == "confirmed"
    assert conf.relative_difference == pytest.approx(1_000 / 100_000)


async def test_reports_differing_beyond_tolerance_are_mismatched(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    await record_flow(
        session, world.flow("mill", "stamper", "steel-coil", "100", "t"), caller=caller
    )
    await record_flow(
        session,
        world.flow("mill", "stamper", "steel-coil", "90", "t", reporter="stamper"),
        caller=caller,
        tolerance=0.02,
    )
    conf = (await session.execute(sa.select(confirmations))).one()
    assert conf.status == "mismatched"
    assert conf.relative_difference == pytest.approx(0.1)


async def test_same_side_reporting_twice_records_two_flows(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    for _ in range(2):
        await record_flow(
            session, world.flow("mill", "stamper", "steel-coil", "5", "t"), caller=caller
        )
    assert await _count(session, flows) == 2
    assert await _count(session, confirmations) == 0


async def test_other_period_is_another_transfer(session: AsyncSession, caller: Caller) -> None:
    world = await make_world(session, caller)
    await record_flow(session, world.flow("mill", "stamper", "steel-coil", "5", "t"), caller=caller)
    await record_flow(
        session,
        world.flow("mill", "stamper", "steel-coil", "5", "t", period=FEB, reporter="stamper"),
        caller=caller,
    )
    assert await _count(session, flows) == 2
    assert await _count(session, confirmations) == 0


async def test_batch_links_both_sides_reported_in_the_same_batch(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    result = await record_flows(
        session,
        [
            world.flow("mill", "stamper", "steel-coil", "10", "t"),
            world.flow("supplier", "mill", "steel-coil", "30", "t"),
            world.flow("mill", "stamper", "steel-coil", "10", "t", reporter="stamper"),
        ],
        caller=caller,
    )
    first, _, third = result.entries
    assert third.flow_id == first.flow_id
    assert third.linked
    assert await _count(session, flows) == 2


async def test_batch_with_one_bad_row_writes_nothing_and_names_every_bad_row(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    good = world.flow("supplier", "mill", "steel-coil", "1", "t")
    with pytest.raises(BatchValidationError) as raised:
        await record_flows(
            session,
            [
                good,
                world.flow("supplier", "mill", "steel-coil", "-1", "t"),
                good,
                world.flow("supplier", "mill", "water", "1", "t"),
            ],
            caller=caller,
        )
    assert [e.field for e in raised.value.errors] == [
        ("flows", "1", "quantity"),
        ("flows", "3", "unit"),
    ]
    assert await _count(session, flows) == 0
    assert await _count(session, sa.table("record_batch")) == 0


async def _checker(session: AsyncSession, world: World, caller: Caller) -> FlowChecker:
    return await flow_checker(
        session,
        caller=caller,
        node_ids=world.nodes.values(),
        material_ids=world.materials.values(),
    )


async def test_flow_checker_names_each_bad_entry_and_passes_the_others_without_writing(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    good = world.flow("supplier", "mill", "steel-coil", "1", "t")
    checker = await _checker(session, world, caller)
    checks = checker.check(
        [
            good,
            world.flow("supplier", "mill", "steel-coil", "-1", "t"),
            good,
            world.flow("supplier", "mill", "water", "1", "t"),
        ],
    )
    assert sorted(checks.passed) == [0, 2]
    assert [e.field for e in checks.errors] == [("flows", "1", "quantity"), ("flows", "3", "unit")]
    assert await _count(session, flows) == 0


async def test_flow_checker_reports_a_node_it_did_not_load_as_unknown(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    checker = await flow_checker(
        session,
        caller=caller,
        node_ids=[world.nodes["supplier"], world.nodes["mill"]],
        material_ids=world.materials.values(),
    )
    checks = checker.check(
        [
            world.flow("supplier", "mill", "steel-coil", "1", "t"),
            world.flow("mill", "stamper", "steel-coil", "1", "t"),
        ]
    )
    assert sorted(checks.passed) == [0]
    assert [(e.field, e.message) for e in checks.errors] == [
        (("flows", "1", "target"), f"no park node with id {world.nodes['stamper']}")
    ]


async def test_append_checked_records_checked_flows_under_the_batch_and_links_transfers(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    entries = [
        world.flow("mill", "stamper", "steel-coil", "10", "t"),
        world.flow("supplier", "mill", "steel-coil", "30", "t"),
        world.flow("mill", "stamper", "steel-coil", "9900", "kg", reporter="stamper"),
    ]
    checks = (await _checker(session, world, caller)).check(entries)
    assert not checks.errors
    batch = RecordBatch(kind=BatchKind.FILE, row_count=3, recorded_by=caller.subject)
    session.add(batch)
    await session.flush()
    assert batch.id is not None
    recorded = await append_checked(
        session, [checks.passed[i] for i in range(3)], batch_id=batch.id, tolerance=0.02
    )
    stored = {
        r.id: r
        for r in await session.execute(
            sa.select(flows.c.id, flows.c.quantity, flows.c.unit, flows.c.batch_id)
        )
    }
    assert [(stored[r.flow_id].quantity, stored[r.flow_id].unit) for r in recorded[:2]] == [
        (10_000.0, "kg"),
        (30_000.0, "kg"),
    ]
    assert {r.batch_id for r in stored.values()} == {batch.id}
    assert (recorded[2].flow_id, recorded[2].linked) == (recorded[0].flow_id, True)
    status, difference = (
        await session.execute(
            sa.select(confirmations.c.status, confirmations.c.relative_difference)
        )
    ).one()
    assert status == "confirmed"
    assert difference == pytest.approx(100 / 10_000)  # |10,000 − 9,900| / 10,000 kg


def test_a_checked_flow_is_made_only_by_the_ledger_s_checks() -> None:
    with pytest.raises(TypeError, match="FlowChecker"):
        CheckedFlow(None, seal=object())  # type: ignore[arg-type]


async def test_idempotency_key_replays_the_first_result_and_refuses_other_rows(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    rows = [world.flow("supplier", "mill", "steel-coil", "1", "t")]
    first = await record_flows(session, rows, caller=caller, idempotency_key="erp-2025-01")
    again = await record_flows(session, rows, caller=caller, idempotency_key="erp-2025-01")
    assert again.replayed
    assert again.batch_id == first.batch_id
    assert [e.flow_id for e in again.entries] == [e.flow_id for e in first.entries]
    assert await _count(session, flows) == 1
    with pytest.raises(DuplicateError) as raised:
        await record_flows(
            session,
            [world.flow("supplier", "mill", "steel-coil", "2", "t")],
            caller=caller,
            idempotency_key="erp-2025-01",
        )
    assert raised.value.field == ("idempotencyKey",)


async def test_reversal_negates_the_original_and_cannot_repeat(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    original = await record_flow(
        session, world.flow("supplier", "mill", "steel-coil", "12.5", "t"), caller=caller
    )
    reversal_id = await reverse_flow(
        session, original.flow_id, caller=caller, reason="typed the wrong month"
    )
    reversal = (await session.execute(sa.select(flows).where(flows.c.id == reversal_id))).one()
    assert reversal.quantity == -12_500.0
    assert reversal.reported_quantity == "-12.5"
    assert reversal.reverses_id == original.flow_id
    total = (await session.execute(sa.select(sa.func.sum(flows.c.quantity)))).scalar_one()
    assert total == 0
    with pytest.raises(ReversalError):
        await reverse_flow(session, original.flow_id, caller=caller, reason="again")
    with pytest.raises(ReversalError):
        await reverse_flow(session, reversal_id, caller=caller, reason="undo the undo")
    assert await _count(session, flows) == 2


async def test_reversed_flow_is_no_longer_open_for_the_other_side(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    sent = await record_flow(
        session, world.flow("mill", "stamper", "steel-coil", "10", "t"), caller=caller
    )
    await reverse_flow(session, sent.flow_id, caller=caller, reason="duplicate")
    received = await record_flow(
        session,
        world.flow("mill", "stamper", "steel-coil", "10", "t", reporter="stamper"),
        caller=caller,
    )
    assert not received.linked
    with pytest.raises(ConfirmationError):
        await confirm_flow(session, sent.flow_id, caller=caller)


async def test_confirm_flow_accepts_the_recorded_figure_or_compares_a_new_one(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    sent = await record_flow(
        session, world.flow("mill", "stamper", "steel-coil", "10", "t"), caller=caller
    )
    await confirm_flow(session, sent.flow_id, caller=caller)
    await confirm_flow(session, sent.flow_id, caller=caller, quantity="8", unit="t")
    rows = (await session.execute(sa.select(confirmations).order_by(confirmations.c.id))).all()
    assert [(r.status, r.relative_difference) for r in rows] == [
        ("confirmed", 0.0),
        ("mismatched", pytest.approx(0.2)),
    ]
    assert all(r.reporting_party_id == world.nodes["stamper"] for r in rows)
    with pytest.raises(ConfirmationError) as raised:
        await confirm_flow(
            session, sent.flow_id, caller=caller, reporting_party_id=world.nodes["mill"]
        )
    assert raised.value.field == ("reportingParty",)


async def test_boundary_flow_has_no_counterparty_to_confirm(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    bought = await record_flow(
        session, world.flow("supplier", "mill", "steel-coil", "10", "t"), caller=caller
    )
    with pytest.raises(ConfirmationError):
        await confirm_flow(session, bought.flow_id, caller=caller)


@pytest.mark.parametrize(
    ("value", "currency", "field"),
    [
        ("100", None, "currency"),
        (None, "VND", "value"),
        ("100", "dong", "currency"),
        ("-5", "VND", "value"),
        ("NaN", "VND", "value"),
    ],
)
async def test_flow_value_needs_a_currency_and_a_sane_number(
    session: AsyncSession, caller: Caller, value: str | None, currency: str | None, field: str
) -> None:
    world = await make_world(session, caller)
    with pytest.raises(MfaError) as raised:
        await record_flow(
            session,
            world.flow("supplier", "mill", "steel-coil", "1", "t", value=value, currency=currency),
            caller=caller,
        )
    assert raised.value.field == (field,)
    assert await _count(session, flows) == 0


async def test_reversal_negates_the_value_too(session: AsyncSession, caller: Caller) -> None:
    world = await make_world(session, caller)
    original = await record_flow(
        session,
        world.flow("mill", "customer", "steel-coil", "2", "t", value="36000000", currency="VND"),
        caller=caller,
    )
    reversal = await reverse_flow(session, original.flow_id, caller=caller, reason="credit note")
    rows = dict((await session.execute(sa.select(flows.c.id, flows.c.value))).all())
    assert rows == {original.flow_id: 36_000_000.0, reversal: -36_000_000.0}


async def test_batch_ids_follow_the_input_order_in_few_statements(
    engine: AsyncEngine,
    caller: Caller,
    count_statements: Callable[[AsyncEngine], list[str]],
) -> None:
    """Each returned id is the row of its input (distinct quantities tell them apart), and a
    batch of 2,000 rows is a handful of multi-row statements, not one INSERT per row."""
    async with session_factory(engine)() as session, session.begin():
        world = await make_world(session, caller)
    rows = [world.flow("supplier", "mill", "steel-coil", str(i + 1), "kg") for i in range(2000)]
    statements = count_statements(engine)
    async with session_factory(engine)() as session, session.begin():
        result = await record_flows(session, rows, caller=caller)
    assert len(statements) < 30, len(statements)
    async with session_factory(engine)() as session:
        quantity = dict((await session.execute(sa.select(flows.c.id, flows.c.quantity))).all())
    assert [quantity[e.flow_id] for e in result.entries] == [float(i + 1) for i in range(2000)]


async def test_a_batch_links_every_counterpart_report_with_one_lookup(
    engine: AsyncEngine,
    caller: Caller,
    count_statements: Callable[[AsyncEngine], list[str]],
) -> None:
    """1,000 counterpart reports, each for a different transfer recorded earlier, confirm
    their own transfer (quantities tell them apart) and cost one look-up statement, not one
    per key or per few hundred keys."""
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(1000)]

    def report(day: date, reporter: str) -> FlowCreate:
        return world.flow(
            "mill",
            "stamper",
            "steel-coil",
            str(day.toordinal() % 997 + 1),
            "kg",
            period=(day, day),
            reporter=reporter,
        )

    async with session_factory(engine)() as session, session.begin():
        world = await make_world(session, caller)
        first = await record_flows(session, [report(d, "mill") for d in days], caller=caller)
    statements = count_statements(engine)
    async with session_factory(engine)() as session, session.begin():
        second = await record_flows(session, [report(d, "stamper") for d in days], caller=caller)
    assert [e.flow_id for e in second.entries] == [e.flow_id for e in first.entries]
    assert all(e.linked for e in second.entries)
    lookups = [s for s in statements if "flow_confirmation" in s and s.startswith("SELECT")]
    assert len(lookups) == 1, lookups
    async with session_factory(engine)() as session:
        statuses = (await session.execute(sa.select(confirmations.c.status))).scalars().all()
    assert len(statuses) == 1000
    assert set(statuses) == {"confirmed"}


async def test_a_reversal_rolls_back_with_the_transaction_that_made_it(
    engine: AsyncEngine, caller: Caller
) -> None:
    """The reversal's insert sits in a savepoint (to catch a concurrent reversal); the
    savepoint must stay inside the caller's transaction, which decides: here it fails."""
    async with session_factory(engine)() as session, session.begin():
        world = await make_world(session, caller)
        original = await record_flow(
            session, world.flow("supplier", "mill", "steel-coil", "2", "t"), caller=caller
        )

    class Abort(Exception):
        pass

    async def reverse_then_fail() -> None:
        async with session_factory(engine)() as session, session.begin():
            await reverse_flow(session, original.flow_id, caller=caller, reason="wrong month")
            raise Abort

    with pytest.raises(Abort):
        await reverse_then_fail()
    async with session_factory(engine)() as session:
        ids = (await session.execute(sa.select(flows.c.id))).scalars().all()
    assert ids == [original.flow_id]
