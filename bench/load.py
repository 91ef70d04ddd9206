"""Load: 50 concurrent clients mixing reads and writes for 60 s, then a check of the ledger.

    python -m bench.load [--backend sqlite|postgresql|both] [--quick]

For each backend, on a fresh database holding the generated park (20 enterprises) and a
ledger of 20,000 flows:

* baseline: ``wrk`` against ``GET /healthz`` (the HTTP stack, no GraphQL, no database) with
  the same connections, for a quarter of the duration;
* load: ``wrk`` with a Lua script, ``CONNECTIONS`` connections over 2 threads for
  ``DURATION`` s against ``uvicorn`` (one worker). Four requests in five are reads (the first
  20 flows of a random enterprise, or a page of the park's enterprises); one in five records a
  purchase by a random enterprise through ``flowsRecord``, each with its own idempotency key,
  also written as the flow's evidence number. The client logs every key whose response
  acknowledged the write (200, no ``errors``, empty ``userErrors``).

Printed: requests per second, p50/p99 latency as wrk measures it, the error count (transport
errors, non-2xx answers, GraphQL errors and userErrors: must be 0), and the ledger check: every
acknowledged key is in ``record_batch`` exactly once and its flow in ``flow`` exactly once; no
key is there twice. Writes in flight when wrk stops may be committed without an
acknowledgement: those are counted apart. ratio = baseline requests/s ÷ load requests/s.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from bench.common import (
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
    parse_args,
    print_table,
    run,
    uvicorn_server,
)
from mfa.api.ids import to_global_id
from mfa.db import create_engine
from mfa.settings import Environment, Settings

WRK = "/usr/bin/wrk"
WRK_ARGS = (WRK, "-t2", "--timeout", "30s")
FULL = {"connections": 50, "duration": 60, "ledger": 20_000}
QUICK = {"connections": 8, "duration": 3, "ledger": 1_000}
WRITE_SHARE = 0.2
KEY_PREFIX = "LOAD"
_RESULT = re.compile(r"^RESULT (\{.*\})$", re.MULTILINE)

# The Lua side: globals (not locals) so ``done`` can read each thread's counters.
LOAD_SCRIPT = r"""
local threads = {}
local headers = HEADERS

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  counter, reads, writes, acked, failed = 0, 0, 0, 0, 0
  ack_file = io.open(ACK_DIR .. "/ack-" .. id .. ".txt", "w")
  math.randomseed(id * 7919)
end

function request()
  counter = counter + 1
  if math.random() < WRITE_SHARE then
    writes = writes + 1
    local key = string.format("%s-%d-%d", KEY_PREFIX, id, counter)
    local target = ENTERPRISES[math.random(#ENTERPRISES)]
    return wrk.format("POST", "/graphql", headers, string.format(WRITE, target, key, key))
  end
  reads = reads + 1
  local body
  if math.random() < 0.5 then
    body = string.format(READ_FLOWS, ENTERPRISES[math.random(#ENTERPRISES)])
  else
    body = READ_ENTERPRISES
  end
  return wrk.format("POST", "/graphql", headers, body)
end

function response(status, hdrs, body)
  local ok = status == 200 and not string.find(body, '"errors":', 1, true)
  local key = string.match(body, '"idempotencyKey":"([%w%-]+)"')
  if key then
    ok = ok and string.find(body, '"userErrors":[]', 1, true) ~= nil
    if ok then
      ack_file:write(key, "\n")
      ack_file:flush()
      acked = acked + 1
    end
  end
  if not ok then failed = failed + 1 end
end

function done(summary, latency, requests)
  local reads, writes, acked, failed = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    reads = reads + t:get("reads")
    writes = writes + t:get("writes")
    acked = acked + t:get("acked")
    failed = failed + t:get("failed")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"transport_errors": %d, "non_2xx": %d, "failed": %d, "reads": %d, "writes": %d, ' ..
    '"acked": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status, failed, reads, writes, acked))
end
"""

BASELINE_SCRIPT = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"transport_errors": %d, "non_2xx": %d, "failed": 0, "reads": %d, "writes": 0, ' ..
    '"acked": 0}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status, summary.requests))
end
"""

WRITE_MUTATION = """mutation ($input: FlowsRecordInput!) { flowsRecord(input: $input) {
  batch { id idempotencyKey } recordedCount userErrors { code message } } }"""
READ_FLOWS = """query ($e: ID!) { flows(first: 20, filter: {enterprise: $e}) {
  totalCount nodes { id quantity unit periodStart material { code } } } }"""
READ_ENTERPRISES = """{ enterprises(first: 20) { totalCount nodes { id code name isicCode } } }"""


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def lua_script(world: World, headers: dict[str, str], ack_dir: Path) -> str:
    """The Lua script with the park's ids, the request bodies (``string.format`` templates:
    ``%s`` for the enterprise and, in writes, the key twice) and the credentials inlined."""
    write = json.dumps(
        {
            "query": WRITE_MUTATION,
            "variables": {
                "input": {
                    "flows": [
                        {
                            "source": to_global_id("BoundaryNode", world.boundary["suppliers"]),
                            "target": "@TARGET@",
                            "material": to_global_id("Material", world.materials["steel-coil"]),
                            "quantity": "12.5",
                            "unit": "t",
                            "periodStart": "2024-06-01",
                            "periodEnd": "2024-06-30",
                            "evidence": "@KEY@",
                        }
                    ],
                    "idempotencyKey": "@KEY@",
                }
            },
        }
    )
    write = write.replace("%", "%%").replace("@TARGET@", "%s").replace("@KEY@", "%s")
    read_flows = json.dumps({"query": READ_FLOWS, "variables": {"e": "@E@"}})
    read_flows = read_flows.replace("%", "%%").replace("@E@", "%s")
    enterprises = ", ".join(_lua_string(to_global_id("Enterprise", pk)) for pk in world.enterprises)
    lua_headers = ", ".join(
        f"[ {_lua_string(k)} ] = {_lua_string(v)}"
        for k, v in {**headers, "Content-Type": "application/json"}.items()
    )
    prelude = "\n".join(
        [
            f"HEADERS = {{{lua_headers}}}",
            f"ENTERPRISES = {{{enterprises}}}",
            f"WRITE = {_lua_string(write)}",
            f"READ_FLOWS = {_lua_string(read_flows)}",
            f"READ_ENTERPRISES = {_lua_string(json.dumps({'query': READ_ENTERPRISES}))}",
            f"WRITE_SHARE = {WRITE_SHARE}",
            f"KEY_PREFIX = {_lua_string(KEY_PREFIX)}",
            f"ACK_DIR = {_lua_string(str(ack_dir))}",
        ]
    )
    return prelude + "\n" + LOAD_SCRIPT


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    reads: int
    writes: int
    acked: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def run_wrk(base: str, path: str, script: str, *, connections: int, duration: int) -> WrkResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as file:
        file.write(script)
        file.flush()
        completed = subprocess.run(
            [*WRK_ARGS, f"-c{connections}", f"-d{duration}s", "-s", file.name, base + path],
            capture_output=True,
            text=True,
            timeout=duration + 120,
            check=True,
        )
    found = _RESULT.search(completed.stdout)
    if found is None:
        raise RuntimeError(f"wrk printed no RESULT line:\n{completed.stdout}{completed.stderr}")
    r = json.loads(found.group(1))
    return WrkResult(
        requests=r["requests"],
        seconds=r["duration_us"] / 1e6,
        p50_ms=r["p50_us"] / 1e3,
        p99_ms=r["p99_us"] / 1e3,
        errors=r["transport_errors"] + r["non_2xx"] + r["failed"],
        reads=r["reads"],
        writes=r["writes"],
        acked=r["acked"],
    )


@dataclass(frozen=True, slots=True)
class LedgerCheck:
    acknowledged: int
    missing: int  # acknowledged, but no batch or no flow
    duplicated: int  # a key with more than one batch or flow
    unacknowledged: int  # committed while wrk stopped, before the answer reached it


def check_ledger(url: str, ack_dir: Path) -> LedgerCheck:
    """Every acknowledged key once in ``record_batch`` and once as a flow's evidence."""
    acked = [line for path in ack_dir.glob("ack-*.txt") for line in path.read_text().splitlines()]
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            batches = dict(
                connection.execute(
                    sa.text(
                        "SELECT idempotency_key, count(*) FROM record_batch "
                        "WHERE idempotency_key LIKE :p GROUP BY idempotency_key"
                    ),
                    {"p": f"{KEY_PREFIX}-%"},
                ).all()
            )
            flows = dict(
                connection.execute(
                    sa.text(
                        "SELECT evidence, count(*) FROM flow WHERE evidence LIKE :p "
                        "GROUP BY evidence"
                    ),
                    {"p": f"{KEY_PREFIX}-%"},
                ).all()
            )
    finally:
        engine.dispose()
    missing = sum(1 for key in acked if batches.get(key) != 1 or flows.get(key) != 1)
    duplicated = sum(1 for n in batches.values() if n > 1) + sum(1 for n in flows.values() if n > 1)
    unacknowledged = len(set(batches) - set(acked))
    return LedgerCheck(
        len(acked), missing, duplicated + len(acked) - len(set(acked)), unacknowledged
    )


async def measure(backend: str, sizes: dict[str, int]) -> None:
    with fresh_database(backend) as url:
        log(f"{backend}: generating the park and a ledger of {sizes['ledger']:,} flows")
        world = await create_world(url)
        entries = generate_flows(world, sizes["ledger"], batch_size=10_000)
        await load_ledger(url, world, entries, 10_000)
        analyze(url)
        headers = bench_headers(Settings(database_url=url, environment=Environment.TEST))
        with uvicorn_server(url) as base, tempfile.TemporaryDirectory() as folder:
            connections, duration = sizes["connections"], sizes["duration"]
            log(f"{backend}: baseline, GET /healthz, {connections} connections")
            baseline = await asyncio.to_thread(
                run_wrk,
                base,
                "/healthz",
                BASELINE_SCRIPT,
                connections=connections,
                duration=max(2, duration // 4),
            )
            log(f"{backend}: load, {connections} connections for {duration} s")
            script = lua_script(world, headers, Path(folder))
            load = await asyncio.to_thread(
                run_wrk, base, "/graphql", script, connections=connections, duration=duration
            )
            check = check_ledger(url, Path(folder))
    print_table(
        f"Load, {backend}: {connections} connections, {duration} s, "
        f"{int(WRITE_SHARE * 100)}% writes",
        ["run", "requests", "requests/s", "p50 ms", "p99 ms", "errors", "reads", "writes"],
        [
            [
                f"baseline GET /healthz ({baseline.seconds:.0f} s)",
                fmt_int(baseline.requests),
                fmt_int(baseline.per_second),
                fmt_ms(baseline.p50_ms),
                fmt_ms(baseline.p99_ms),
                str(baseline.errors),
                "-",
                "-",
            ],
            [
                "GraphQL reads + flowsRecord",
                fmt_int(load.requests),
                fmt_int(load.per_second),
                fmt_ms(load.p50_ms),
                fmt_ms(load.p99_ms),
                str(load.errors),
                fmt_int(load.reads),
                fmt_int(load.writes),
            ],
        ],
    )
    print_table(
        f"Load, {backend}: ratio to the baseline",
        ["baseline req/s", "load req/s", "baseline/load"],
        [
            [
                fmt_int(baseline.per_second),
                fmt_int(load.per_second),
                fmt_ratio(baseline.per_second / load.per_second),
            ]
        ],
    )
    print_table(
        f"Load, {backend}: every acknowledged write in the ledger exactly once",
        ["acknowledged", "missing", "duplicated", "committed, answer cut by the stop"],
        [
            [
                fmt_int(check.acknowledged),
                str(check.missing),
                str(check.duplicated),
                str(check.unacknowledged),
            ]
        ],
    )
    verdict = "OK" if load.errors == 0 and check.missing == 0 and check.duplicated == 0 else "FAIL"
    print(f"\nload check, {backend}: {verdict}")
    if verdict != "OK":
        raise SystemExit(f"load run on {backend}: errors or a ledger mismatch (see above)")


async def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    sizes = QUICK if args.quick else FULL
    clock = Stopwatch()
    print(describe_machine())
    for backend in backends(args.backend):
        await measure(backend, sizes)
    print(f"\n{load_average()}")
    print(f"elapsed: {clock.seconds:.1f} s")


if __name__ == "__main__":
    run(main())
