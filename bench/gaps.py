"""The park-year circularity gaps list: time and peak memory on a large generated ledger.

    python -m bench.gaps [--backend sqlite|postgresql|both] [--quick] [--flows N]

Data: one park of 1,000 enterprises (``--quick``: 20) and the boundary nodes and catalogue of
``bench.common.create_world``, plus virgin pig iron (HS 7201) and plastic packaging waste
(EWC 15 01 02), and about 83 flows per enterprise and month of 2025 (1,000,000 in the year;
``--flows`` sets another total), written with plain Core inserts (the ledger's own recording
is measured by ``bench.record_flows``; at its 5,000–15,000 rows/s a million rows would take
minutes, and no figure here depends on how the rows got in). Per enterprise and month:

* purchases of coil, pellets and chemicals (and pig iron for 1 in 20 enterprises), sales of
  parts and slag, sludge to landfill and scrap to the recycler, one grid, water and
  wastewater flow; 1 in 30 enterprises landfills steel scrap and 1 in 30 plastic packaging,
  which the crosswalk matches with neighbours' pig-iron and pellet purchases;
* deliveries to 4 fixed partners (the rest of the budget, about 40 a month), 98.5% of them
  confirmed by the receiver, 1% mismatched by 10%, 1.5% unconfirmed;
* a balancing sale (or purchase) that leaves a 0.5–2% residual, 15% in 1% of the months.

Measured, after a warm-up run: ``circularity_gaps`` for the park and the year, all kinds
(best of 3), each kind alone, and the baseline: one ``SELECT count(*), sum(quantity)`` over
the park's flows of the year, the least any park-year analysis reads (the ratio is gaps ÷
baseline). Peak memory is the peak of Python allocations during one more run (tracemalloc,
which slows Python down, so that run is not timed) and the process's peak RSS at the end.
"""

from __future__ import annotations

import argparse
import random
import resource
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from bench.common import (
    BENCH_CALLER,
    Stopwatch,
    World,
    analyze,
    backends,
    create_world,
    describe_machine,
    fmt_int,
    fmt_ratio,
    fresh_database,
    load_average,
    log,
    parse_args,
    print_table,
    run,
)
from mfa.balance import calendar_months
from mfa.db import create_async, create_engine, session_factory, transaction
from mfa.gaps import GapKind, circularity_gaps
from mfa.models import ConfirmationStatus, Flow, FlowConfirmation, MaterialKind
from mfa.registry import MaterialCreate, create_material
from mfa.units import Dimension

FULL_ENTERPRISES = 1_000
QUICK_ENTERPRISES = 20
PER_ENTERPRISE_MONTH = 83
YEAR = (date(2025, 1, 1), date(2025, 12, 31))
CHUNK = 50_000
PARTNERS = 4
RECORDED_AT = datetime(2026, 1, 15, tzinfo=UTC)

flow_t = Flow.__table__  # type: ignore[attr-defined]
confirmation_t = FlowConfirmation.__table__  # type: ignore[attr-defined]


class Generator:
    """Rows of the flow and confirmation tables, month by month (see the module docstring)."""

    def __init__(self, world: World, extra: dict[str, int], flows: int) -> None:
        self.w = world
        self.m = {**world.materials, **extra}
        self.rng = random.Random(20251128)
        self.next_id = 1
        n = len(world.enterprises)
        self.transfers = max(PARTNERS, flows // (n * 12) - 40)
        self.counts: dict[str, int] = defaultdict(int)

    def _flow(
        self,
        source: int,
        target: int,
        material: str,
        quantity: float,
        unit: str,
        period: tuple[date, date],
        reporter: int,
    ) -> dict[str, Any]:
        row = {
            "id": self.next_id,
            "park_id": self.w.park_id,
            "source_id": source,
            "target_id": target,
            "material_id": self.m[material],
            "quantity": quantity,
            "unit": unit,
            "reported_quantity": f"{quantity:.3f}",
            "reported_unit": unit,
            "period_start": period[0],
            "period_end": period[1],
            "reporting_party_id": reporter,
            "recorded_by": BENCH_CALLER.subject,
            "recorded_at": RECORDED_AT,
        }
        self.next_id += 1
        return row

    def month(self, period: tuple[date, date]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rng, w, b = self.rng, self.w, self.w.boundary
        flows: list[dict[str, Any]] = []
        confirmations: list[dict[str, Any]] = []
        mass_in: dict[int, float] = defaultdict(float)
        mass_out: dict[int, float] = defaultdict(float)
        ents = w.enterprises
        for i, e in enumerate(ents):
            bought = ["steel-coil", "pp-pellets", "chemicals"]
            if i % 20 == 7:
                bought.append("pig-iron")
            for k in range(25):
                q = rng.uniform(1_000, 20_000)
                flows.append(
                    self._flow(b["suppliers"], e, bought[k % len(bought)], q, "kg", period, e)
                )
                mass_in[e] += q
            for k in range(8):
                q = rng.uniform(1_000, 20_000)
                flows.append(
                    self._flow(e, b["customers"], "parts" if k % 4 else "slag", q, "kg", period, e)
                )
                mass_out[e] += q
            wastes = [("landfill", "sludge"), ("landfill", "sludge"), ("recycler", "steel-scrap")]
            if i % 30 == 3:
                wastes.append(("landfill", "steel-scrap"))
            if i % 30 == 11:
                wastes.append(("landfill", "plastic-packaging-waste"))
            for node, material in wastes:
                q = rng.uniform(100, 2_000)
                flows.append(self._flow(e, b[node], material, q, "kg", period, e))
                mass_out[e] += q
            flows.append(
                self._flow(b["grid"], e, "electricity", rng.uniform(1e4, 1e5), "kWh", period, e)
            )
            flows.append(
                self._flow(b["water-utility"], e, "water", rng.uniform(100, 1_000), "m3", period, e)
            )
            flows.append(
                self._flow(e, b["wwtp"], "wastewater", rng.uniform(80, 900), "m3", period, e)
            )
            for k in range(self.transfers):
                partner = ents[(i + 1 + k % PARTNERS) % len(ents)]
                q = rng.uniform(500, 5_000)
                row = self._flow(e, partner, "parts" if k % 2 else "steel-coil", q, "kg", period, e)
                flows.append(row)
                mass_out[e] += q
                mass_in[partner] += q
                draw = rng.random()
                if draw < 0.015:
                    continue
                other = q * (1.1 if draw < 0.025 else 1.0)
                confirmations.append(
                    {
                        "flow_id": row["id"],
                        "reporting_party_id": partner,
                        "quantity": other,
                        "reported_quantity": f"{other:.3f}",
                        "reported_unit": "kg",
                        "status": (
                            ConfirmationStatus.MISMATCHED
                            if draw < 0.025
                            else ConfirmationStatus.CONFIRMED
                        ),
                        "relative_difference": abs(other - q) / max(other, q),
                        "tolerance": 0.02,
                        "recorded_by": BENCH_CALLER.subject,
                        "recorded_at": RECORDED_AT,
                    }
                )
        for e in ents:
            rho = 0.15 if rng.random() < 0.01 else rng.uniform(0.005, 0.02)
            # Make inputs − outputs = rho · max(inputs, outputs) with one sale or purchase.
            sale = mass_in[e] * (1 - rho) - mass_out[e]
            if sale > 0:
                flows.append(self._flow(e, b["customers"], "parts", sale, "kg", period, e))
            else:
                purchase = (mass_out[e] * (1 + rho)) - mass_in[e]
                flows.append(self._flow(b["suppliers"], e, "steel-coil", purchase, "kg", period, e))
            self.counts["planted unbalanced"] += rho == 0.15
        return flows, confirmations


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


async def extra_materials(url: str) -> dict[str, int]:
    engine = create_async(url)
    found = {}
    try:
        async with transaction(session_factory(engine)) as session:
            for code, kind, hs, ewc in (
                ("pig-iron", MaterialKind.PRODUCT, "7201", None),
                ("plastic-packaging-waste", MaterialKind.WASTE, "3915", "15 01 02"),
            ):
                material = await create_material(
                    session,
                    MaterialCreate(
                        code=code,
                        name=code,
                        kind=kind,
                        dimension=Dimension.MASS,
                        hs_code=hs,
                        ewc_code=ewc,
                    ),
                    caller=BENCH_CALLER,
                )
                assert material.id is not None
                found[code] = material.id
    finally:
        await engine.dispose()
    return found


def _insert(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """SQLite: executemany. PostgreSQL: COPY, because its executemany runs one INSERT per row
    and each fires the park-version statement trigger (about 800 rows/s)."""
    if connection.dialect.name != "postgresql":
        for chunk in _chunks(rows):
            connection.execute(sa.insert(table), chunk)
        return
    columns = list(rows[0]) if rows else []
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([_copy_value(row[c]) for c in columns])


def _copy_value(value: Any) -> Any:
    return value.value if isinstance(value, ConfirmationStatus) else value


def load(url: str, generator: Generator, clock: Stopwatch) -> tuple[int, int]:
    """Insert the year's rows month by month; returns (flows, confirmations)."""
    engine = create_engine(url)
    flows = confirmations = 0
    try:
        for period in calendar_months(*YEAR):
            rows, confirms = generator.month(period)
            with engine.begin() as connection:
                _insert(connection, flow_t, rows)
                _insert(connection, confirmation_t, confirms)
            flows += len(rows)
            confirmations += len(confirms)
            log(f"  {period[0]:%Y-%m}: {flows:,} flows, {confirmations:,} confirmations", clock)
    finally:
        engine.dispose()
    return flows, confirmations


async def _gaps(url: str, park_id: int, kinds: set[GapKind] | None = None) -> int:
    engine = create_async(url)
    try:
        async with session_factory(engine)() as session:
            result = await circularity_gaps(
                session,
                caller=BENCH_CALLER,
                park_id=park_id,
                period_start=YEAR[0],
                period_end=YEAR[1],
                balance_tolerance=0.05,
                kinds=kinds,
            )
    finally:
        await engine.dispose()
    return len(result.gaps)


async def year_baseline(url: str, park_id: int) -> None:
    engine = create_async(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(
                sa.select(sa.func.count(), sa.func.sum(flow_t.c.quantity)).where(
                    flow_t.c.park_id == park_id,
                    flow_t.c.period_start >= YEAR[0],
                    flow_t.c.period_end <= YEAR[1],
                )
            )
    finally:
        await engine.dispose()


async def best_seconds(work: Any, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        best = min(best, time.perf_counter() - started)
    return best


async def measure(backend: str, enterprises: int, flows: int, clock: Stopwatch) -> None:
    with fresh_database(backend) as url:
        log(f"{backend}: creating {enterprises:,} enterprises", clock)
        world = await create_world(url, enterprises=enterprises)
        generator = Generator(world, await extra_materials(url), flows)
        written, confirmed = load(url, generator, clock)
        analyze(url)
        log(f"{backend}: loaded; measuring", clock)
        park = world.park_id
        count = await _gaps(url, park)  # warm-up: connections, caches, factor files
        rows = [
            [
                "baseline: count and sum of the year's flows",
                fmt_s(await best_seconds(lambda: year_baseline(url, park))),
                "",
                "",
            ],
        ]
        total = await best_seconds(lambda: _gaps(url, park))
        rows.append(["gaps list, all kinds", fmt_s(total), fmt_int(count), ""])
        for kind in GapKind:
            one = await _gaps(url, park, {kind})
            seconds = await best_seconds(lambda kind=kind: _gaps(url, park, {kind}), runs=1)
            rows.append([f"  {kind.name} alone", fmt_s(seconds), fmt_int(one), ""])
        baseline = float(rows[0][1])
        rows[1][3] = fmt_ratio(total / baseline)
        tracemalloc.start()
        await _gaps(url, park)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print_table(
            f"Circularity gaps, {backend}: {enterprises:,} enterprises, {written:,} flows, "
            f"{confirmed:,} confirmations, one year",
            ["measurement", "seconds", "gaps", "ratio to baseline"],
            rows,
        )
        print_table(
            f"Circularity gaps, {backend}: memory",
            ["measure", "MB"],
            [
                [
                    "peak Python allocations during one gaps list (tracemalloc)",
                    f"{peak / 2**20:,.1f}",
                ],
                ["peak RSS of the process so far (includes loading)", f"{rss:,.1f}"],
            ],
        )
        print(f"planted unbalanced months: {generator.counts['planted unbalanced']}")


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f}"


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--flows", type=int, default=None, help="flows in the year (default 1M)")


async def main() -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "", _options)
    enterprises = QUICK_ENTERPRISES if args.quick else FULL_ENTERPRISES
    flows = args.flows or enterprises * 12 * PER_ENTERPRISE_MONTH
    clock = Stopwatch()
    print(f"machine: {describe_machine()}")
    for backend in backends(args.backend):
        await measure(backend, enterprises, flows, clock)
    print(f"\nelapsed: {clock.seconds:.1f} s; {load_average()}")


if __name__ == "__main__":
    run(main())
