"""Property tests (hypothesis) of units and the ledger, with bounded examples.

Units: every conversion matches a published factor and round-trips; a unit of another
dimension is always refused; arbitrary text is refused with a domain error, never a crash.
Ledger: a reversal cannot be reversed; balances do not depend on the order flows arrive in.
"""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from datetime import date
from decimal import Decimal
from typing import TypeVar

import pytest
from factories import make_world
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfa.access import Caller
from mfa.balance import mass_balance
from mfa.db import create_async, session_factory
from mfa.errors import DimensionError, MfaError, QuantityError, ReversalError, UnitError
from mfa.ledger import FlowCreate, record_flow, reverse_flow
from mfa.units import CANONICAL_UNIT, Dimension, conversion_factor, to_canonical

T = TypeVar("T")

# Published factors to the canonical unit (SI brochure; NIST SP 811 for the pound and the
# international table calorie): independent of pint's definitions.
FACTORS: dict[Dimension, dict[str, float]] = {
    Dimension.MASS: {"kg": 1, "g": 1e-3, "t": 1e3, "tonne": 1e3, "lb": 0.45359237, "mg": 1e-6},
    Dimension.VOLUME: {"m3": 1, "L": 1e-3, "l": 1e-3, "mL": 1e-6, "cm3": 1e-6, "dm3": 1e-3},
    Dimension.ENERGY: {"kWh": 1, "MWh": 1e3, "Wh": 1e-3, "GJ": 1e9 / 3.6e6, "MJ": 1e6 / 3.6e6},
}
ALL_UNITS = [(unit, dim) for dim, units in FACTORS.items() for unit in units]
AMOUNTS = st.decimals(min_value=0, max_value=Decimal("1e12"), places=6, allow_nan=False)
BOUNDED = settings(max_examples=60, deadline=None)


@BOUNDED
@given(unit=st.sampled_from(ALL_UNITS), amount=AMOUNTS)
def test_conversion_matches_the_published_factor_and_round_trips(
    unit: tuple[str, Dimension], amount: Decimal
) -> None:
    name, dimension = unit
    canonical, reported = to_canonical(str(amount), name, dimension)
    assert reported == amount
    assert math.isclose(canonical, float(amount) * FACTORS[dimension][name], rel_tol=1e-12)
    back = canonical / conversion_factor(name, dimension)
    assert math.isclose(back, float(amount), rel_tol=1e-12, abs_tol=1e-12)
    assert conversion_factor(CANONICAL_UNIT[dimension], dimension) == 1


@BOUNDED
@given(unit=st.sampled_from(ALL_UNITS), other=st.sampled_from(list(Dimension)))
def test_a_unit_of_another_dimension_is_always_refused(
    unit: tuple[str, Dimension], other: Dimension
) -> None:
    name, dimension = unit
    if other is dimension:
        return
    with pytest.raises(DimensionError) as refused:
        to_canonical("1", name, other)
    assert refused.value.field == ("unit",)
    assert name in refused.value.message


@BOUNDED
@given(text=st.text(max_size=12), dimension=st.sampled_from(list(Dimension)))
def test_arbitrary_unit_text_is_refused_with_a_domain_error_or_converted(
    text: str, dimension: Dimension
) -> None:
    refused: MfaError | None = None
    try:
        factor = conversion_factor(text, dimension)
    except (UnitError, DimensionError) as error:
        refused = error
    if refused is not None:
        assert refused.field == ("unit",)
    else:
        assert math.isfinite(factor)
        assert factor > 0


@BOUNDED
@given(
    amount=st.one_of(st.text(max_size=12), st.floats(), st.decimals(allow_nan=True)),
    unit=st.sampled_from(ALL_UNITS),
)
def test_arbitrary_amounts_are_accepted_only_when_finite_and_not_negative(
    amount: object, unit: tuple[str, Dimension]
) -> None:
    name, dimension = unit
    refused: MfaError | None = None
    try:
        canonical, reported = to_canonical(amount, name, dimension)  # type: ignore[arg-type]
    except MfaError as error:
        refused = error
    if refused is not None:
        assert refused.field == ("quantity",)
    else:
        assert reported.is_finite()
        assert reported >= 0
        assert math.isfinite(canonical)
        assert canonical >= 0
    if isinstance(amount, float) and math.isfinite(amount) and amount < 0:
        with pytest.raises(QuantityError):
            to_canonical(amount, name, dimension)


# --- the ledger ------------------------------------------------------------------------------


@pytest.fixture
def run() -> Iterator[Callable[[Awaitable[T]], T]]:
    """Runs a coroutine on one event loop kept for the whole test (hypothesis calls the test
    body once per example, synchronously)."""
    with asyncio.Runner() as runner:
        yield runner.run  # type: ignore[misc]


ENTERPRISES = ("mill", "stamper", "assembler")
MONTHS = [(date(2025, m, 1), date(2025, m, 28)) for m in range(1, 13)]


@st.composite
def movements(draw: st.DrawFn) -> list[dict[str, object]]:
    """Up to 12 movements, each in its own month: boundary purchases and sales, and transfers
    reported by the sender and sometimes also by the receiver (same amount, other unit)."""
    count = draw(st.integers(min_value=1, max_value=8))
    months = draw(st.permutations(range(12)))[:count]
    result = []
    for month in months:
        kind = draw(st.sampled_from(["purchase", "sale", "transfer"]))
        tonnes = draw(st.decimals(min_value=Decimal("0.001"), max_value=1000, places=3))
        a, b = draw(st.permutations(ENTERPRISES))[:2]
        source, target = {
            "purchase": ("supplier", a),
            "sale": (a, "customer"),
            "transfer": (a, b),
        }[kind]
        result.append(
            {
                "source": source,
                "target": target,
                "material": draw(st.sampled_from(["steel-coil", "parts"])),
                "tonnes": tonnes,
                "month": month,
                "both_sides": kind == "transfer" and draw(st.booleans()),
            }
        )
    return result


def _reports(world: object, moves: list[dict[str, object]]) -> list[FlowCreate]:
    reports = []
    for m in moves:
        period = MONTHS[m["month"]]  # type: ignore[index]
        reports.append(
            world.flow(m["source"], m["target"], m["material"], m["tonnes"], "t", period)
        )  # type: ignore[attr-defined]
        if m["both_sides"]:
            kg = Decimal(m["tonnes"]) * 1000  # type: ignore[arg-type]
            reports.append(
                world.flow(  # type: ignore[attr-defined]
                    m["source"], m["target"], m["material"], kg, "kg", period, reporter=m["target"]
                )
            )
    return reports


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(moves=movements(), seed=st.integers(min_value=0, max_value=2**32))
def test_balances_do_not_depend_on_the_order_of_recording(
    database_url: str,
    caller: Caller,
    run: Callable[[Awaitable[object]], object],
    moves: list[dict[str, object]],
    seed: int,
) -> None:
    # By hand: every movement moves its tonnes once, whichever side reported it first.
    expected: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for m in moves:
        kg = float(m["tonnes"]) * 1000  # type: ignore[arg-type]
        expected[(str(m["target"]), str(m["material"]))][0] += kg
        expected[(str(m["source"]), str(m["material"]))][1] += kg

    async def balances(shuffle: bool) -> dict[tuple[str, str], tuple[float, float]]:
        engine = create_async(database_url)
        try:
            async with session_factory(engine)() as session, session.begin():
                world = await make_world(session, caller, code=f"p{uuid.uuid4().hex[:10]}")
                reports = _reports(world, moves)
                if shuffle:
                    random.Random(seed).shuffle(reports)
                for report in reports:
                    await record_flow(session, report, caller=caller)
                names = {pk: name for name, pk in world.materials.items()}
                found = {}
                for code in ENTERPRISES:
                    result = await mass_balance(
                        session,
                        caller=caller,
                        enterprise_id=world.nodes[code],
                        period_start=date(2025, 1, 1),
                        period_end=date(2025, 12, 31),
                        tolerance=0.05,
                    )
                    for line in result.lines:
                        found[(code, names[line.material_id])] = (line.inputs, line.outputs)
                return found
        finally:
            await engine.dispose()

    in_order = run(balances(shuffle=False))
    shuffled = run(balances(shuffle=True))
    assert in_order.keys() == shuffled.keys()
    for key, (inputs, outputs) in in_order.items():
        assert shuffled[key] == pytest.approx((inputs, outputs), rel=1e-9)
        if key in expected:
            assert (inputs, outputs) == pytest.approx(tuple(expected[key]), rel=1e-9)
    enterprise_keys = {k for k in expected if k[0] in ENTERPRISES}
    assert enterprise_keys <= in_order.keys()


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(moves=movements())
def test_a_reversal_cannot_be_reversed_and_a_flow_is_reversed_once(
    database_url: str,
    caller: Caller,
    run: Callable[[Awaitable[object]], object],
    moves: list[dict[str, object]],
) -> None:
    async def check() -> None:
        engine = create_async(database_url)
        try:
            async with session_factory(engine)() as session, session.begin():
                world = await make_world(session, caller, code=f"p{uuid.uuid4().hex[:10]}")
                for report in _reports(world, moves):
                    recorded = await record_flow(session, report, caller=caller)
                    if recorded.linked:
                        continue
                    reversal = await reverse_flow(
                        session, recorded.flow_id, caller=caller, reason="typo"
                    )
                    with pytest.raises(ReversalError, match="itself a reversal"):
                        await reverse_flow(session, reversal, caller=caller, reason="undo")
                    with pytest.raises(ReversalError, match="already reversed"):
                        await reverse_flow(session, recorded.flow_id, caller=caller, reason="x")
        finally:
            await engine.dispose()

    run(check())
