"""Side by side with PostGraphile: one page of an enterprise's flows, under wrk.

    python -m bench.postgraphile [--flows N] [--duration S] [--warm-up S] [--quick]

On a fresh PostgreSQL database with the service's own schema (``metadata.create_all``: its
tables, append-only and park-version triggers), the park and catalogue of ``bench.common``
are created through the registry, then ``--flows`` ledger rows (default 1,000,000) are
bulk-loaded with ``COPY`` into the service's ``flow`` table (one record batch; 70% boundary
flows, 30% transfers between enterprises; no confirmations), and the database is vacuumed
and analysed (as autovacuum would).

Two servers read that database on 127.0.0.1:

* **PostGraphile 4.14** (``postgraphile`` CLI, one node process, query log off), installed
  with npm into ``bench/.postgraphile/`` on first use (reused afterwards), serving the
  ``public`` schema: ``allFlows(condition: {sourceId})`` with the relations ``source``,
  ``target`` and ``material`` (named by smart comments on the foreign keys);
* **the service**: ``uvicorn --factory mfa.app:create_app`` with 1, then 2 workers, once with
  the response cache off (``MFA_RESPONSE_CACHE=false``: every request runs the query) and
  once with it on (in-process LRU; with 2 workers, Redis when it answers on 127.0.0.1:6379).

Both answer the equivalent query, the first 100 flows whose source is the first enterprise
in recording order, with source and target names, material name and kind, and
``totalCount``. The script checks that both return the same ids, names, kinds, quantities
and count, then drives each with ``wrk`` (8 connections, 2 threads, POST from a Lua script):
a warm-up, then ``--duration`` seconds measured. It prints req/s, p50 and p99 (wrk's own
percentiles), the ratio to PostGraphile, and the peak resident memory of each server's
processes (psutil, sampled every 0.2 s: the sum over a server's processes, and the largest
worker). wrk, PostgreSQL and the servers share the machine's cores. Everything started is
stopped on exit, and the database dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from bench.common import (
    BOUNDARY_FLOWS,
    MONTHS,
    ROOT,
    TRANSFER_MATERIALS,
    Stopwatch,
    World,
    create_world,
    describe_machine,
    fmt_int,
    fmt_ms,
    fmt_ratio,
    free_port,
    fresh_database,
    load_average,
    log,
    month,
    parse_args,
    postgres_unavailable,
    print_table,
    run,
    uvicorn_process,
)
from mfa.api.ids import decode_global_id, to_global_id
from mfa.auth import development_token
from mfa.db import create_async, session_factory, transaction
from mfa.settings import Environment, Settings
from mfa.units import CANONICAL_UNIT

POSTGRAPHILE_DIR = ROOT / "bench" / ".postgraphile"
POSTGRAPHILE_VERSION = "~4.14.0"
POSTGRAPHILE_BIN = POSTGRAPHILE_DIR / "node_modules" / ".bin" / "postgraphile"
WRK = "/usr/bin/wrk"
REDIS_URL = "redis://127.0.0.1:6379/0"
CONNECTIONS = 8
PAGE = 100

SERVICE_QUERY = """query EnterpriseFlows($enterprise: ID!, $first: Int!) {
  flows(filter: {enterprise: $enterprise, direction: OUT}, first: $first) {
    totalCount
    nodes { id quantity source { name } target { name } material { name kind } }
  }
}"""

POSTGRAPHILE_QUERY = """query EnterpriseFlows($enterprise: Int!, $first: Int!) {
  allFlows(condition: {sourceId: $enterprise}, first: $first, orderBy: PRIMARY_KEY_ASC) {
    totalCount
    nodes {
      id quantity
      source { name }
      target { name }
      material { name kind }
    }
  }
}"""


@dataclass(frozen=True, slots=True)
class Plan:
    flows: int
    warm_up: int
    duration: int
    workers: tuple[int, ...]


# --- the ledger --------------------------------------------------------------------------------

_COLUMNS = (
    "park_id",
    "source_id",
    "target_id",
    "material_id",
    "quantity",
    "unit",
    "reported_quantity",
    "reported_unit",
    "period_start",
    "period_end",
    "reporting_party_id",
    "batch_id",
    "recorded_by",
    "recorded_at",
)


def flow_rows(world: World, count: int, batch_id: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """``count`` rows of ``flow`` in recording order, spread evenly over ``MONTHS`` months:
    70% boundary flows (as ``bench.common.generate_flows``), 30% transfers, in canonical units."""
    rng = random.Random(seed)
    recorded_at = datetime.now(UTC)
    for index in range(count):
        start, end = month(index * MONTHS // count)
        if rng.random() < 0.7:
            node, material, direction = rng.choice(BOUNDARY_FLOWS)
            enterprise = rng.choice(world.enterprises)
            boundary = world.boundary[node]
            source, target = (boundary, enterprise) if direction == "in" else (enterprise, boundary)
            reporter = enterprise
        else:
            source, target = rng.sample(world.enterprises, 2)
            material = rng.choice(TRANSFER_MATERIALS)
            reporter = source
        unit = CANONICAL_UNIT[world.dimensions[material]]
        quantity = round(rng.lognormvariate(8, 1.2), 3)
        yield (
            world.park_id,
            source,
            target,
            world.materials[material],
            quantity,
            unit,
            f"{quantity:.3f}",
            unit,
            start,
            end,
            reporter,
            batch_id,
            "bench",
            recorded_at,
        )


def bulk_load(url: str, world: World, count: int, clock: Stopwatch) -> None:
    """COPY ``count`` flows into the service's ``flow`` table under one record batch."""
    with psycopg.connect(url, autocommit=False) as connection:
        batch_id = connection.execute(
            "INSERT INTO record_batch (kind, source, row_count, recorded_by, recorded_at) "
            "VALUES ('file', 'bench.postgraphile', %s, 'bench', now()) RETURNING id",
            (count,),
        ).fetchone()
        assert batch_id is not None
        rows = flow_rows(world, count, batch_id[0])
        chunk = 200_000
        for done in range(0, count, chunk):
            with connection.cursor().copy(f"COPY flow ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                for _ in range(min(chunk, count - done)):
                    copy.write_row(next(rows))
            log(f"  {min(done + chunk, count):,} flows copied", clock)
        connection.commit()
        # As autovacuum would after a bulk insert (PostgreSQL >= 13; the test server runs
        # with it off): statistics, and the visibility map that lets totalCount use an
        # index-only scan (2.7 ms instead of 150 ms for 32,590 rows of 1,000,000).
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")


SMART_COMMENTS = {
    # The self-reference reverses_id names its forward and backward relations alike.
    "flow_reverses_id_fkey": "@fieldName reverses\n@foreignSingleFieldName reversedBy",
    "flow_source_id_fkey": "@fieldName source\n@foreignFieldName flowsAsSource",
    "flow_target_id_fkey": "@fieldName target\n@foreignFieldName flowsAsTarget",
    "flow_material_id_fkey": "@fieldName material",
}
"""PostGraphile smart comments on the ``flow`` table's foreign keys: relation names as the
service's (``source``, ``target``, ``material``), and no clash on ``reverses_id``."""


EXPOSED = ("flow", "park_node", "material")
"""The tables PostGraphile serves; every other table gets ``@omit`` (the page needs no other,
and the omitted ones cannot clash with PostGraphile's own names, e.g. a ``node_id`` column)."""


def expose_to_postgraphile(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        for (table,) in tables:
            if table not in EXPOSED:
                connection.execute(f"COMMENT ON TABLE \"{table}\" IS E'@omit'")
        for constraint, comment in SMART_COMMENTS.items():
            escaped = comment.replace("'", "''")
            connection.execute(f"COMMENT ON CONSTRAINT {constraint} ON flow IS E'{escaped}'")


# --- the servers -------------------------------------------------------------------------------


def install_postgraphile() -> Path:
    """PostGraphile in ``bench/.postgraphile`` (npm, once); its CLI."""
    if POSTGRAPHILE_BIN.exists():
        return POSTGRAPHILE_BIN
    if shutil.which("npm") is None:
        raise SystemExit("npm not found: install Node.js 20 and npm to run this benchmark")
    POSTGRAPHILE_DIR.mkdir(parents=True, exist_ok=True)
    package = {
        "name": "mfa-bench-postgraphile",
        "private": True,
        "description": "PostGraphile for bench/postgraphile.py, installed by it",
        "dependencies": {"postgraphile": POSTGRAPHILE_VERSION},
    }
    (POSTGRAPHILE_DIR / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=POSTGRAPHILE_DIR,
        check=True,
    )
    return POSTGRAPHILE_BIN


@contextmanager
def postgraphile_server(url: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """PostGraphile on 127.0.0.1 and a free port over ``url``'s ``public`` schema."""
    binary = install_postgraphile()
    port = free_port()
    process = subprocess.Popen(
        [
            str(binary),
            "--connection",
            url,
            "--schema",
            "public",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--disable-query-log",
            "--disable-graphiql",
            "--disable-default-mutations",
        ],
        cwd=POSTGRAPHILE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"postgraphile exited with {process.returncode}: {error}")
            try:
                answer = httpx.post(f"{base}/graphql", json={"query": "{__typename}"}, timeout=2)
                if answer.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("postgraphile did not answer within 60 s")
            time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def service_token(url: str) -> str:
    """A bearer token of the development operator client (created on first use)."""
    engine = create_async(url)
    try:
        async with transaction(session_factory(engine)) as session:
            settings = Settings(database_url=url, environment=Environment.TEST)
            return await development_token(session, settings=settings)
    finally:
        await engine.dispose()


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


# --- one page, both ways -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    base: str
    body: dict[str, Any]
    headers: dict[str, str]


def service_body(world: World) -> dict[str, Any]:
    enterprise = to_global_id("Enterprise", world.enterprises[0])
    return {"query": SERVICE_QUERY, "variables": {"enterprise": enterprise, "first": PAGE}}


def postgraphile_body(world: World) -> dict[str, Any]:
    return {
        "query": POSTGRAPHILE_QUERY,
        "variables": {"enterprise": world.enterprises[0], "first": PAGE},
    }


def fetch(server: Server) -> tuple[int, list[tuple[Any, ...]]]:
    """One answer as (totalCount, rows of id, quantity, source, target, material, kind)."""
    response = httpx.post(
        f"{server.base}/graphql", json=server.body, headers=server.headers, timeout=60
    )
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"{server.name} answered errors: {body['errors']}")
    page = body["data"].get("flows") or body["data"]["allFlows"]
    rows = []
    for n in page["nodes"]:
        decoded = decode_global_id(n["id"]) if isinstance(n["id"], str) else ("Flow", n["id"])
        assert decoded is not None
        rows.append(
            (
                decoded[1],
                n["quantity"],
                n["source"]["name"],
                n["target"]["name"],
                n["material"]["name"],
                n["material"]["kind"].lower(),
            )
        )
    return page["totalCount"], rows


def check_same(reference: tuple[int, list[Any]], other: tuple[int, list[Any]], name: str) -> None:
    if reference != other:
        raise RuntimeError(
            f"{name} differs from PostGraphile: totalCount {other[0]} vs {reference[0]}, "
            f"first rows {other[1][:2]} vs {reference[1][:2]}"
        )


# --- wrk and memory ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measured:
    server: str
    per_second: float
    p50: float
    p99: float
    errors: int
    peak_mb: float
    worker_mb: float


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS_MS[unit]


def wrk(server: Server, seconds: int) -> tuple[float, float, float, int]:
    """req/s, p50 ms, p99 ms and non-2xx / socket errors of ``seconds`` of POSTs."""
    headers = {"Content-Type": "application/json", **server.headers}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write('wrk.method = "POST"\n')
        for name, value in headers.items():
            script.write(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}\n")
        script.write(f"wrk.body = {json.dumps(json.dumps(server.body))}\n")
    try:
        completed = subprocess.run(
            [
                WRK,
                "-t2",
                f"-c{CONNECTIONS}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "--latency",
                "-s",
                script.name,
                f"{server.base}/graphql",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script.name)
    out = completed.stdout
    per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(
        int(m)
        for m in re.findall(r"Non-2xx or 3xx responses: (\d+)", out)
        + re.findall(r"(?:connect|read|write|timeout) (\d+)", out)
    )
    return per_second, p50, p99, errors


class PeakMemory:
    """Peak resident memory of a process and its children, sampled every 0.2 s in a thread."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.root = psutil.Process(process.pid)
        self.total = 0
        self.largest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                processes = [self.root, *self.root.children(recursive=True)]
                sizes = [p.memory_info().rss for p in processes]
            except psutil.Error:
                sizes = []
            if sizes:
                self.total = max(self.total, sum(sizes))
                self.largest = max(self.largest, max(sizes))
            self._stop.wait(0.2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(server: Server, process: subprocess.Popen[bytes], plan: Plan) -> Measured:
    with PeakMemory(process) as memory:
        wrk(server, plan.warm_up)
        per_second, p50, p99, errors = wrk(server, plan.duration)
    return Measured(
        server.name, per_second, p50, p99, errors, memory.total / 2**20, memory.largest / 2**20
    )


# --- the run -----------------------------------------------------------------------------------


def service_modes(workers: tuple[int, ...]) -> list[tuple[str, int, dict[str, str]]]:
    """(label, workers, settings) of each service run: uncached through graphql-core's
    executor (the compiled flow pages off: the baseline of ``mfa.api.compiled``), uncached,
    then cached."""
    executor = {"MFA_RESPONSE_CACHE": "false", "MFA_COMPILED_FLOW_PAGES": "false"}
    modes = [("service, 1 worker(s), uncached, executor", 1, executor)]
    modes += [
        (f"service, {w} worker(s), uncached", w, {"MFA_RESPONSE_CACHE": "false"}) for w in workers
    ]
    for w in workers:
        env = {"MFA_RESPONSE_CACHE": "true"}
        label = f"service, {w} worker(s), cached in process"
        if w > 1 and redis_available():
            prefix = f"mfa-bench-{os.getpid()}-{w}:"
            env |= {"MFA_CACHE_URL": REDIS_URL, "MFA_CACHE_PREFIX": prefix}
            label = f"service, {w} worker(s), cached in Redis"
        modes.append((label, w, env))
    return modes


async def main() -> None:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--flows", type=int, default=None, help="ledger rows (1,000,000)")
        parser.add_argument("--duration", type=int, default=None, help="measured s (20)")
        parser.add_argument("--warm-up", type=int, default=None, help="warm-up s (5)")

    # SIGTERM, and SIGINT even when started in the background (where it is ignored), raise
    # KeyboardInterrupt: the servers are stopped and the database dropped all the same.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "", extra)
    quick = Plan(flows=2_000, warm_up=1, duration=2, workers=(1,))
    full = Plan(flows=1_000_000, warm_up=5, duration=20, workers=(1, 2))
    base_plan = quick if args.quick else full
    plan = Plan(
        flows=args.flows or base_plan.flows,
        warm_up=args.warm_up or base_plan.warm_up,
        duration=args.duration or base_plan.duration,
        workers=base_plan.workers,
    )
    reason = postgres_unavailable()
    if reason is not None:
        raise SystemExit(reason)
    if shutil.which(WRK) is None:
        raise SystemExit(f"wrk not found at {WRK}: apt-get install wrk")
    clock = Stopwatch()
    print(f"machine: {describe_machine()}")
    with fresh_database("postgresql") as url:
        world = await create_world(url)
        bulk_load(url, world, plan.flows, clock)
        expose_to_postgraphile(url)
        log(f"ledger of {plan.flows:,} flows loaded, vacuumed and analysed", clock)
        results: list[Measured] = []
        with postgraphile_server(url) as (base, process):
            graphile = Server("PostGraphile 4.14", base, postgraphile_body(world), {})
            reference = fetch(graphile)
            log(f"PostGraphile up; totalCount {reference[0]:,}", clock)
            results.append(measure(graphile, process, plan))
            log("  PostGraphile measured", clock)
        authorization = {"Authorization": f"Bearer {await service_token(url)}"}
        for label, workers, env in service_modes(plan.workers):
            with uvicorn_process(url, workers=workers, env=env) as (base, process):
                service = Server(label, base, service_body(world), authorization)
                check_same(reference, fetch(service), label)
                results.append(measure(service, process, plan))
                log(f"  {label} measured", clock)
    baseline = results[0].per_second
    print_table(
        f"First {PAGE} flows of one enterprise with totalCount, {plan.flows:,} flows, "
        f"wrk {CONNECTIONS} connections, {plan.duration} s after {plan.warm_up} s warm-up",
        [
            "server",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "/ PostGraphile req/s",
            "peak MB (all)",
            "peak MB (largest)",
        ],
        [
            [
                r.server,
                fmt_int(r.per_second),
                fmt_ms(r.p50),
                fmt_ms(r.p99),
                str(r.errors),
                fmt_ratio(r.per_second / baseline),
                fmt_int(r.peak_mb),
                fmt_int(r.worker_mb),
            ]
            for r in results
        ],
    )
    print(f"answers checked equal: totalCount {reference[0]:,}, {len(reference[1])} rows")
    print(f"\nelapsed: {clock.seconds:.1f} s; {load_average()}")


if __name__ == "__main__":
    run(main())
