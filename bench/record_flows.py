"""Recording throughput: flows per second through the ledger and through ``flowsRecord``.

    python -m bench.record_flows [--backend sqlite|postgresql|both] [--quick]

For each size (10,000 flows in one batch; 100,000 in 10 batches of 10,000) and backend, on a
fresh database each time:

* baseline: plain SQLAlchemy Core ``insert`` (executemany, no RETURNING) of exactly the rows
  the ledger wrote, read back from the ledger run: the batch row, its flows and confirmations,
  one transaction per batch, through the same async driver as the service;
* (a) ``mfa.ledger.record_flows``, one transaction per batch (an import job's path);
* (b) the ``flowsRecord`` mutation through ``schema.execute`` with the service's Context: the
  whole API path, from JSON-shaped variables (global ids, ISO dates, decimal strings) to the
  payload, including ``flowIds`` for every row.

    ratio = baseline rows/s ÷ path rows/s        (target: ≤ 3)

Inputs are prepared before the clock starts: ``FlowCreate`` rows for (a), variables for (b).
Every path is warmed up once on a small batch, then the heap is frozen as the server does at
start-up (``mfa.app.freeze_heap``); with several runs, each path's best counts.
On PostgreSQL the tables are analysed between batches, off the clock (see ``settle``).
A last table splits one single-batch ``flowsRecord`` into its stages (see ``breakdown``).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from graphql.execution.values import get_variable_values
from strawberry.types.arguments import convert_arguments

from bench.common import (
    BENCH_CALLER,
    SqlTimer,
    Stopwatch,
    World,
    as_variables,
    backends,
    batches,
    best_of,
    create_world,
    describe_machine,
    fmt_int,
    fmt_ratio,
    fresh_database,
    generate_flows,
    load_average,
    log,
    parse_args,
    print_table,
    rate,
    run,
    settle,
)
from graphql import OperationDefinitionNode, parse
from mfa.api.context import Context
from mfa.api.schema import build_schema
from mfa.app import freeze_heap
from mfa.db import create_async, session_factory, transaction
from mfa.ledger import FlowCreate, record_flows
from mfa.models import BatchKind, FlowConfirmation, RecordBatch
from mfa.models import Flow as FlowModel
from mfa.settings import Environment, Settings

TARGET_RATIO = 3.0
# (flows, batch size, runs): each path's best of ``runs``, since other processes on a shared
# machine only ever add time. The 100,000-flow case already spans 10 batches.
FULL_SIZES = ((10_000, 10_000, 3), (100_000, 10_000, 1))
QUICK_SIZES = ((500, 500, 1), (1_000, 500, 1))
WARM_UP_ROWS = 200
STAGE_RUNS = 5

MUTATION = """
mutation FlowsRecord($input: FlowsRecordInput!) {
  flowsRecord(input: $input) {
    batch { id rowCount }
    flowIds
    recordedCount
    linkedCount
    userErrors { field message code }
  }
}
"""

batch_t = RecordBatch.__table__  # type: ignore[attr-defined]
flow_t = FlowModel.__table__  # type: ignore[attr-defined]
confirmation_t = FlowConfirmation.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Written:
    """What one batch wrote, column for column, as the baseline inserts it again."""

    batch: dict[str, Any]
    flows: list[dict[str, Any]]
    confirmations: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Timed:
    """One path's run: seconds per batch (the clock runs only while a batch is recorded)."""

    batches: tuple[float, ...]
    linked: int = 0
    sql_seconds: float = 0.0
    sql_statements: int = 0

    @property
    def seconds(self) -> float:
        return sum(self.batches)

    def describe(self) -> str:
        spread = (
            f" (batches {min(self.batches):.2f}-{max(self.batches):.2f} s)"
            if len(self.batches) > 1
            else ""
        )
        return f"{self.seconds:7.2f} s{spread}, {self.linked:,} rows linked"


@dataclass(frozen=True, slots=True)
class Measured:
    rows: int
    batches: int
    runs: int
    linked: int
    baseline: float  # seconds, best of the runs
    ledger: Timed  # the best run
    graphql: Timed

    @property
    def ratios(self) -> tuple[float, float]:
        return self.ledger.seconds / self.baseline, self.graphql.seconds / self.baseline


async def ledger_path(
    url: str, parts: Sequence[Sequence[FlowCreate]], *, sql: SqlTimer | None = None
) -> Timed:
    """(a): ``record_flows`` for every batch, one transaction each."""
    engine = create_async(url)
    sql = sql or SqlTimer()
    sql.attach(engine)
    factory = session_factory(engine)
    seconds, linked = [], 0
    try:
        for index, part in enumerate(parts):
            if index:
                await settle(engine)
            clock = Stopwatch()
            async with transaction(factory) as session:
                result = await record_flows(session, part, caller=BENCH_CALLER, kind=BatchKind.FILE)
            seconds.append(clock.seconds)
            linked += sum(1 for entry in result.entries if entry.linked)
    finally:
        await engine.dispose()
    return Timed(tuple(seconds), linked, sql.seconds, sql.statements)


async def written_rows(url: str) -> list[Written]:
    """Every batch the ledger wrote, with its flows and confirmations, in id order."""
    engine = create_async(url)
    try:
        async with engine.connect() as connection:

            async def rows(table: sa.Table) -> list[dict[str, Any]]:
                result = await connection.execute(sa.select(table).order_by(table.c.id))
                return [dict(r) for r in result.mappings()]

            batch_rows, flows, confirmations = (
                await rows(batch_t),
                await rows(flow_t),
                await rows(confirmation_t),
            )
    finally:
        await engine.dispose()
    return [
        Written(
            batch=b,
            flows=[f for f in flows if f["batch_id"] == b["id"]],
            confirmations=[c for c in confirmations if c["batch_id"] == b["id"]],
        )
        for b in batch_rows
    ]


async def baseline_path(url: str, written: Sequence[Written]) -> Timed:
    """The same rows through plain Core inserts (executemany), one transaction per batch."""
    engine = create_async(url)
    seconds = []
    try:
        for batch in written:
            clock = Stopwatch()
            async with engine.begin() as connection:
                await connection.execute(sa.insert(batch_t), [batch.batch])
                await connection.execute(sa.insert(flow_t), batch.flows)
                if batch.confirmations:
                    await connection.execute(sa.insert(confirmation_t), batch.confirmations)
            seconds.append(clock.seconds)
    finally:
        await engine.dispose()
    return Timed(tuple(seconds), sum(len(b.confirmations) for b in written))


async def graphql_path(url: str, requests: Sequence[dict[str, Any]]) -> Timed:
    """(b): one ``flowsRecord`` request per batch, in process, each a transaction."""
    settings = Settings(database_url=url, environment=Environment.TEST, graphiql=False)
    schema = build_schema(settings)
    engine = create_async(url)
    factory = session_factory(engine)
    seconds, linked = [], 0
    try:
        for index, variables in enumerate(requests):
            if index:
                await settle(engine)
            clock = Stopwatch()
            context = Context(factory=factory, settings=settings, caller=BENCH_CALLER)
            result = await schema.execute(
                MUTATION, variable_values=variables, context_value=context
            )
            seconds.append(clock.seconds)
            if result.errors:
                raise RuntimeError(f"flowsRecord failed: {result.errors}")
            assert result.data is not None
            payload = result.data["flowsRecord"]
            if payload["userErrors"]:
                raise RuntimeError(f"flowsRecord refused the batch: {payload['userErrors'][:3]}")
            linked += payload["linkedCount"]
    finally:
        await engine.dispose()
    return Timed(tuple(seconds), linked)


def mix(world: World, entries: Sequence[FlowCreate]) -> str:
    enterprises = set(world.enterprises)
    counts: Counter[str] = Counter()
    for e in entries:
        if e.source_id in enterprises and e.target_id in enterprises:
            counts["counterpart" if e.reporting_party_id == e.target_id else "transfer"] += 1
        else:
            counts["boundary"] += 1
    total = len(entries)
    return ", ".join(
        f"{name} {counts[name] / total:.0%}" for name in ("boundary", "transfer", "counterpart")
    )


async def measure_once(
    backend: str, world: World, parts: Sequence[Sequence[FlowCreate]], clock: Stopwatch
) -> tuple[Timed, Timed, Timed]:
    """(baseline, ledger, GraphQL), each on a fresh database."""
    with fresh_database(backend) as url:
        assert await create_world(url) == world
        ledger = await ledger_path(url, parts)
        log(f"  (a) ledger        {ledger.describe()}", clock)
        written = await written_rows(url)
    with fresh_database(backend) as url:
        assert await create_world(url) == world
        baseline = await baseline_path(url, written)
        log(f"  baseline Core     {baseline.describe()}", clock)
    with fresh_database(backend) as url:
        assert await create_world(url) == world
        requests = [{"input": {"flows": [as_variables(world, e) for e in part]}} for part in parts]
        graphql = await graphql_path(url, requests)
        log(f"  (b) flowsRecord   {graphql.describe()}", clock)
    if not ledger.linked == baseline.linked == graphql.linked:
        raise RuntimeError(f"(a) linked {ledger.linked} rows but (b) {graphql.linked}")
    return baseline, ledger, graphql


async def measure(
    backend: str, world: World, rows: int, size: int, runs: int, clock: Stopwatch
) -> Measured:
    entries = generate_flows(world, rows, batch_size=size)
    parts = batches(entries, size)
    log(f"{backend}, {rows:,} flows in batches of {size:,}: {mix(world, entries)}", clock)
    timings = [await measure_once(backend, world, parts, clock) for _ in range(runs)]
    baselines, ledgers, graphqls = zip(*timings, strict=True)
    ledger = min(ledgers, key=lambda t: t.seconds)
    return Measured(
        rows=rows,
        batches=len(parts),
        runs=runs,
        linked=ledger.linked,
        baseline=min(t.seconds for t in baselines),
        ledger=ledger,
        graphql=min(graphqls, key=lambda t: t.seconds),
    )


async def warm_up(backend: str, clock: Stopwatch) -> World:
    """One small round of every path, unreported: pint's unit cache, the GraphQL parser and
    validation caches and the import of every module are warm before the clock runs."""
    with fresh_database(backend) as url:
        world = await create_world(url)
    entries = generate_flows(world, WARM_UP_ROWS, batch_size=WARM_UP_ROWS)
    with redirect_stdout(io.StringIO()):
        await measure_once(backend, world, [entries], clock)
    log(f"{backend}: warmed up", clock)
    return world


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    seconds: float


def breakdown(world: World, entries: Sequence[FlowCreate], measured: Measured) -> list[Stage]:
    """Where one ``flowsRecord`` batch spends its time, stage by stage.

    (a) and (b) are the best runs measured above, on a single batch; the API's own stages
    (graphql-core's variable coercion, strawberry's conversion of the coerced value into
    input objects, ``to_domain``) are timed alone on the same rows, best of ``STAGE_RUNS``
    (the ledger hashes a batch only under an idempotency key, which these requests omit).
    The SQL time is summed between SQLAlchemy's ``before_cursor_execute`` and
    ``after_cursor_execute``. What is left of (b) is execution
    and the payload (a global id per row); as (a) and (b) are separate runs, noise on a
    shared machine can push that remainder below zero.
    """
    settings = Settings(database_url="sqlite://", environment=Environment.TEST, graphiql=False)
    schema = build_schema(settings)
    variables = {"input": {"flows": [as_variables(world, e) for e in entries]}}
    operation = parse(MUTATION).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    field = schema.get_field_for_type("flowsRecord", "Mutation")
    assert field is not None

    def coerce() -> dict[str, Any]:
        result = get_variable_values(
            schema._schema, operation.variable_definitions or (), variables
        )
        if isinstance(result, list):
            raise RuntimeError(f"variables refused: {result[:3]}")
        return result.coerced

    def convert() -> Any:
        registry = schema.schema_converter.scalar_registry
        return convert_arguments(coerced, field.arguments, registry, schema.config)["input"]

    coerced = coerce()
    converted = convert()
    runs = STAGE_RUNS
    coercion = best_of(runs, coerce)
    conversion = best_of(runs, convert)
    to_domain = best_of(runs, lambda: [row.to_domain() for row in converted.flows])
    ledger, graphql = measured.ledger, measured.graphql.seconds
    return [
        Stage("(b) flowsRecord, the whole request", graphql),
        Stage("  graphql-core: coerce the variables", coercion),
        Stage("  strawberry: convert them to FlowRecordInput objects", conversion),
        Stage("  FlowRecordInput.to_domain: decode the global ids", to_domain),
        Stage("  (a) ledger.record_flows, the whole call", ledger.seconds),
        Stage(
            f"    SQL: {ledger.sql_statements:,} statements, driver and database",
            ledger.sql_seconds,
        ),
        Stage(
            "    the rest: validation, linking, SQLAlchemy parameters",
            ledger.seconds - ledger.sql_seconds,
        ),
        Stage(
            "  the rest: execution, payload (flowIds), batch read",
            graphql - ledger.seconds - coercion - conversion - to_domain,
        ),
    ]


def report(backend: str, results: Sequence[Measured], stages: Sequence[Stage]) -> None:
    print_table(
        f"Recording flows, {backend}: rows per second",
        [
            "flows",
            "batches",
            "runs",
            "linked",
            "baseline rows/s",
            "(a) ledger rows/s",
            "(b) flowsRecord rows/s",
        ],
        [
            [
                f"{m.rows:,}",
                str(m.batches),
                str(m.runs),
                f"{m.linked:,}",
                fmt_int(rate(m.rows, m.baseline)),
                fmt_int(rate(m.rows, m.ledger.seconds)),
                fmt_int(rate(m.rows, m.graphql.seconds)),
            ]
            for m in results
        ],
    )
    print_table(
        f"Recording flows, {backend}: ratio to the baseline (target <= {TARGET_RATIO:g}x)",
        [
            "flows",
            "baseline s",
            "(a) s",
            "(b) s",
            "baseline/(a)",
            "baseline/(b)",
            "(a) met",
            "(b) met",
        ],
        [
            [
                f"{m.rows:,}",
                f"{m.baseline:.2f}",
                f"{m.ledger.seconds:.2f}",
                f"{m.graphql.seconds:.2f}",
                fmt_ratio(m.ratios[0]),
                fmt_ratio(m.ratios[1]),
                "yes" if m.ratios[0] <= TARGET_RATIO else "no",
                "yes" if m.ratios[1] <= TARGET_RATIO else "no",
            ]
            for m in results
        ],
    )
    single = results[0]
    total = stages[0].seconds
    print_table(
        f"Recording flows, {backend}: where one flowsRecord batch of {single.rows:,} rows "
        f"spends its time ((a), (b): best of {single.runs}; stages alone: best of {STAGE_RUNS})",
        ["stage", "seconds", "us per row", "share of (b)"],
        [
            [
                stage.name,
                f"{stage.seconds:.3f}",
                f"{stage.seconds / single.rows * 1e6:.1f}",
                f"{stage.seconds / total:.0%}",
            ]
            for stage in stages
        ],
    )


async def main() -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "")
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    clock = Stopwatch()
    print(f"machine: {describe_machine()}")
    for backend in backends(args.backend):
        world = await warm_up(backend, clock)
        freeze_heap()  # as the server does once it is built; every path below runs after it
        results = [
            await measure(backend, world, rows, size, runs, clock) for rows, size, runs in sizes
        ]
        rows, size, _ = sizes[0]  # a single batch: its stages add up to the request
        stages = breakdown(world, generate_flows(world, rows, batch_size=size), results[0])
        log(f"{backend}: breakdown measured", clock)
        report(backend, results, stages)
    print(f"\nelapsed: {clock.seconds:.1f} s; {load_average()}")


if __name__ == "__main__":
    run(main())
