"""Circularity indicators and the EIP scorecard of a park-year: time and peak memory.

    python -m bench.circularity [--backend sqlite|postgresql|both] [--quick] [--flows N]

Data: the ledger of ``bench.gaps`` (one park of 1,000 enterprises, ``--quick``: 20, and about
1,000,000 flows in 2025, ``--flows`` sets another total), written with plain Core inserts by
the same generator and loader: the indicators read the same rows the gaps list reads.

Measured, after a warm-up run, best of 3: ``mfa.circularity.circularity`` for the park and
the year, for one enterprise, and for a group of 10; the scorecard (the park's indicators
plus the symbiosis links and participation counts); the first page of 100 flows behind the
park's circular inflow with its total count (what an auditor's first click costs); and the
baseline, one ``SELECT count(*), sum(quantity)`` over the park's flows of the year, the least
any park-year analysis reads (the ratios are each measurement ÷ baseline). Peak memory is the
peak of Python allocations during one more park run (tracemalloc; that run is not timed) and
the process's peak RSS at the end.
"""

from __future__ import annotations

import argparse
import resource
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import (
    BENCH_CALLER,
    Stopwatch,
    analyze,
    backends,
    create_world,
    describe_machine,
    fmt_ratio,
    fresh_database,
    load_average,
    log,
    parse_args,
    print_table,
    run,
)
from bench.gaps import (
    FULL_ENTERPRISES,
    PER_ENTERPRISE_MONTH,
    QUICK_ENTERPRISES,
    YEAR,
    Generator,
    best_seconds,
    extra_materials,
    fmt_s,
    load,
    year_baseline,
)
from mfa.circularity import Circularity, circularity, resolve_scope
from mfa.db import create_async, session_factory
from mfa.reads import FlowFilter, flow_page
from mfa.scorecard import scorecard


async def _indicators(url: str, *, park_id: int | None, enterprise_ids: list[int]) -> Circularity:
    engine = create_async(url)
    try:
        async with session_factory(engine)() as session:
            scope = await resolve_scope(
                session, caller=BENCH_CALLER, park_id=park_id, enterprise_ids=enterprise_ids
            )
            return await circularity(
                session, caller=BENCH_CALLER, scope=scope, period_start=YEAR[0], period_end=YEAR[1]
            )
    finally:
        await engine.dispose()


async def _scorecard(url: str, park_id: int) -> int:
    engine = create_async(url)
    try:
        async with session_factory(engine)() as session:
            card = await scorecard(
                session,
                caller=BENCH_CALLER,
                park_id=park_id,
                period_start=YEAR[0],
                period_end=YEAR[1],
            )
    finally:
        await engine.dispose()
    return len(card.participation.links)


async def _first_page(url: str, result: Circularity) -> int:
    engine = create_async(url)
    try:
        async with session_factory(engine)() as session:
            page = await flow_page(
                session,
                caller=BENCH_CALLER,
                flt=FlowFilter(),
                first=100,
                where=result.material.circular_inflow.flows.conditions,
            )
    finally:
        await engine.dispose()
    return page.total_count


async def measure(backend: str, enterprises: int, flows: int, clock: Stopwatch) -> None:
    with fresh_database(backend) as url:
        log(f"{backend}: creating {enterprises:,} enterprises", clock)
        world = await create_world(url, enterprises=enterprises)
        generator = Generator(world, await extra_materials(url), flows)
        written, _ = load(url, generator, clock)
        analyze(url)
        log(f"{backend}: loaded; measuring", clock)
        park = world.park_id
        one, group = [world.enterprises[0]], list(world.enterprises[:10])
        result = await _indicators(url, park_id=park, enterprise_ids=[])  # warm-up
        material = result.material
        cti_entries = (
            material.circular_inflow.flows.entries + material.circular_outflow.flows.entries
        )
        baseline = await best_seconds(lambda: year_baseline(url, park))
        runs: list[tuple[str, Callable[[], Awaitable[Any]], str]] = [
            (
                "circularity, park",
                lambda: _indicators(url, park_id=park, enterprise_ids=[]),
                f"{cti_entries:,} entries in the CTI sums",
            ),
            (
                "circularity, one enterprise",
                lambda: _indicators(url, park_id=None, enterprise_ids=one),
                "",
            ),
            (
                "circularity, 10 enterprises",
                lambda: _indicators(url, park_id=None, enterprise_ids=group),
                "",
            ),
            ("EIP scorecard, park", lambda: _scorecard(url, park), ""),
            (
                "first 100 flows behind % circular inflow, with totalCount",
                lambda: _first_page(url, result),
                "",
            ),
        ]
        rows = [["baseline: count and sum of the year's flows", fmt_s(baseline), "", ""]]
        for label, work, note in runs:
            seconds = await best_seconds(work)
            rows.append([label, fmt_s(seconds), fmt_ratio(seconds / baseline), note])
        tracemalloc.start()
        await _indicators(url, park_id=park, enterprise_ids=[])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print_table(
            f"Circularity indicators, {backend}: {enterprises:,} enterprises, {written:,} flows, "
            "one year",
            ["measurement", "seconds", "ratio to baseline", "note"],
            rows,
        )
        print_table(
            f"Circularity indicators, {backend}: memory",
            ["measure", "MB"],
            [
                [
                    "peak Python allocations during one park run (tracemalloc)",
                    f"{peak / 2**20:,.1f}",
                ],
                ["peak RSS of the process so far (includes loading)", f"{rss:,.1f}"],
            ],
        )
        print(
            f"park: {len(result.enterprises):,} enterprises rated by MCI, "
            f"{sum(len(e.products) for e in result.enterprises):,} product ratings"
        )


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
