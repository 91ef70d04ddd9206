"""Read latency: the first page of flows and an enterprise's monthly mass balance.

    python -m bench.read_path [--backend sqlite|postgresql|both] [--quick]

On a generated ledger (100,000 flows recorded through the ledger in batches of 10,000, plus
monthly stock readings), for each backend:

* in process: ``schema.execute`` with the service's Context, N sequential requests;
* over HTTP: ``uvicorn --factory mfa.app:create_app`` in a subprocess (one worker, asyncio
  loop, h11), N sequential requests from one httpx client, then 8 concurrent clients;
* SQL statements per request, counted with ``before_cursor_execute`` on the app's engine,
  and (in process) the mean time per request spent between ``before_cursor_execute`` and
  ``after_cursor_execute``: the rest of a request is Python (GraphQL execution, mapping).

Latencies are wall-clock milliseconds per request as the client sees them; p50 and p99 by
linear interpolation. Client and server share the machine's cores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from bench.common import (
    BENCH_CALLER,
    Latency,
    SqlTimer,
    Stopwatch,
    World,
    analyze,
    backends,
    bench_headers,
    create_world,
    describe_machine,
    fmt_int,
    fmt_ms,
    fmt_ratio,
    fresh_database,
    generate_flows,
    load_average,
    load_ledger,
    log,
    month,
    parse_args,
    print_table,
    run,
    uvicorn_server,
)
from mfa.api.context import Context
from mfa.api.ids import to_global_id
from mfa.api.schema import build_schema
from mfa.app import create_app
from mfa.db import create_async, session_factory
from mfa.settings import Environment, Settings


@dataclass(frozen=True, slots=True)
class Plan:
    flows: int
    batch_size: int
    warm_up: int
    sequential: int
    clients: int
    per_client: int


FULL = Plan(flows=100_000, batch_size=10_000, warm_up=30, sequential=300, clients=8, per_client=40)
QUICK = Plan(flows=1_000, batch_size=1_000, warm_up=2, sequential=10, clients=8, per_client=2)

FLOWS_PAGE = """
query FlowsPage($first: Int!) {
  flows(first: $first) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      quantity
      unit
      periodStart
      periodEnd
      source { name }
      target { name }
      material { name kind }
    }
  }
}
"""

MASS_BALANCE = """
query MassBalance($enterprise: ID!, $period: PeriodInput!) {
  massBalance(enterprise: $enterprise, period: $period) {
    periodStart
    periodEnd
    tolerance
    flowCount
    enterprise { name }
    lines {
      material { name kind }
      unit
      group
      inputs
      outputs
      openingStock
      closingStock
      stockChange
      net
    }
    materialTotal {
      inputs outputs stockChange residual relativeResidual withinTolerance stockKnown
    }
    waterTotal { inputs outputs stockChange residual relativeResidual withinTolerance }
  }
}
"""


@dataclass(frozen=True, slots=True)
class Request:
    name: str
    query: str
    variables: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Row:
    request: str
    transport: str
    latency: Latency
    per_second: float
    reference_p50: float  # the in-process p50 of the same request
    sql_ms: float | None = None  # mean time in SQL statements per request (in process)

    def cells(self) -> list[str]:
        return [
            self.request,
            self.transport,
            str(len(self.latency.samples)),
            fmt_ms(self.latency.p50),
            fmt_ms(self.latency.p99),
            fmt_ms(self.latency.mean),
            "" if self.sql_ms is None else fmt_ms(self.sql_ms),
            fmt_int(self.per_second),
            fmt_ratio(self.latency.p50 / self.reference_p50),
        ]


def has_mass_balance(settings: Settings) -> bool:
    query_type = build_schema(settings)._schema.query_type
    return query_type is not None and "massBalance" in query_type.fields


def requests(world: World, *, mass_balance: bool) -> list[Request]:
    made = [Request("flows first:100", FLOWS_PAGE, {"first": 100})]
    if mass_balance:
        start, end = month(12)
        made.append(
            Request(
                f"massBalance {start:%Y-%m}",
                MASS_BALANCE,
                {
                    "enterprise": to_global_id("Enterprise", world.enterprises[0]),
                    "period": {"start": start.isoformat(), "end": end.isoformat()},
                },
            )
        )
    return made


def check(body: dict[str, Any], name: str) -> None:
    if body.get("errors"):
        raise RuntimeError(f"{name} failed: {body['errors']}")


async def timed(
    call: Callable[[], Awaitable[None]], count: int, latencies: list[float] | None = None
) -> list[float]:
    samples = [] if latencies is None else latencies
    for _ in range(count):
        clock = Stopwatch()
        await call()
        samples.append(clock.seconds * 1000)
    return samples


async def in_process(url: str, settings: Settings, request: Request, plan: Plan) -> Row:
    """N sequential requests through ``schema.execute``; also the time spent in SQL."""
    schema = build_schema(settings)
    engine = create_async(url)
    factory = session_factory(engine)

    async def call() -> None:
        context = Context(factory=factory, settings=settings, caller=BENCH_CALLER)
        result = await schema.execute(
            request.query, variable_values=request.variables, context_value=context
        )
        if result.errors:
            raise RuntimeError(f"{request.name} failed: {result.errors}")

    try:
        await timed(call, plan.warm_up)
        sql = SqlTimer()
        sql.attach(engine)
        latency = Latency(tuple(await timed(call, plan.sequential)))
    finally:
        await engine.dispose()
    sql_ms = sql.seconds * 1000 / plan.sequential
    return Row(request.name, "in process", latency, 1000 / latency.mean, latency.p50, sql_ms)


async def over_http(base: str, request: Request, plan: Plan) -> tuple[Latency, Latency, float]:
    """Sequential latencies, concurrent latencies, and requests per second under concurrency."""
    body = {"query": request.query, "variables": request.variables}

    def caller(client: httpx.AsyncClient) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            response = await client.post("/graphql", json=body)
            response.raise_for_status()
            check(response.json(), request.name)

        return call

    headers = bench_headers(Settings())
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers) as client:
        await timed(caller(client), plan.warm_up)
        sequential = Latency(tuple(await timed(caller(client), plan.sequential)))

    concurrent: list[float] = []
    clients = [
        httpx.AsyncClient(base_url=base, timeout=60, headers=headers) for _ in range(plan.clients)
    ]
    try:
        await asyncio.gather(*(timed(caller(c), 1) for c in clients))  # open the connections
        clock = Stopwatch()
        await asyncio.gather(*(timed(caller(c), plan.per_client, concurrent) for c in clients))
        seconds = clock.seconds
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return sequential, Latency(tuple(concurrent)), len(concurrent) / seconds


async def statement_counts(
    settings: Settings, world: World, *, mass_balance: bool
) -> list[list[str]]:
    """SQL statements one request runs, counted on the app's own engine."""
    app = create_app(settings)
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(app.state.engine.sync_engine, "before_cursor_execute", record)
    cases = [
        Request("flows first:10", FLOWS_PAGE, {"first": 10}),
        *requests(world, mass_balance=mass_balance),
    ]
    rows = []
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=bench_headers(settings)
        ) as client:
            for case in cases:
                body = {"query": case.query, "variables": case.variables}
                check((await client.post("/graphql", json=body)).json(), case.name)  # connect
                statements.clear()
                check((await client.post("/graphql", json=body)).json(), case.name)
                rows.append([case.name, str(len(statements))])
    finally:
        await app.state.engine.dispose()
    return rows


async def measure(backend: str, plan: Plan, clock: Stopwatch) -> None:
    with fresh_database(backend) as url:
        world = await create_world(url)
        entries = generate_flows(world, plan.flows, batch_size=plan.batch_size)
        await load_ledger(url, world, entries, plan.batch_size)
        analyze(url)
        log(f"{backend}: ledger of {plan.flows:,} flows recorded", clock)
        settings = Settings(database_url=url, environment=Environment.TEST, graphiql=False)
        mass_balance = has_mass_balance(settings)
        if not mass_balance:
            print("note: the schema has no massBalance root field yet: skipping it")
        cases = requests(world, mass_balance=mass_balance)

        rows: dict[str, list[Row]] = {}
        for case in cases:
            rows[case.name] = [await in_process(url, settings, case, plan)]
            log(f"  in process: {case.name}", clock)
        with uvicorn_server(url) as base:
            log(f"  uvicorn up at {base}", clock)
            for case in cases:
                sequential, concurrent, per_second = await over_http(base, case, plan)
                p50 = rows[case.name][0].latency.p50
                rows[case.name] += [
                    Row(case.name, "HTTP, 1 client", sequential, 1000 / sequential.mean, p50),
                    Row(case.name, f"HTTP, {plan.clients} clients", concurrent, per_second, p50),
                ]
                log(f"  over HTTP: {case.name}", clock)
        log("  uvicorn stopped", clock)
        counted = await statement_counts(settings, world, mass_balance=mass_balance)

    print_table(
        f"Reading, {backend}: latency in ms on a ledger of {plan.flows:,} flows",
        [
            "request",
            "transport",
            "requests",
            "p50 ms",
            "p99 ms",
            "mean ms",
            "SQL ms",
            "req/s",
            "p50 / in-process p50",
        ],
        [row.cells() for case in rows.values() for row in case],
    )
    print_table(
        f"Reading, {backend}: SQL statements per request", ["request", "statements"], counted
    )


async def main() -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "")
    plan = QUICK if args.quick else FULL
    clock = Stopwatch()
    print(f"machine: {describe_machine()}")
    for backend in backends(args.backend):
        await measure(backend, plan, clock)
    print(f"\nelapsed: {clock.seconds:.1f} s; {load_average()}")


if __name__ == "__main__":
    run(main())
