"""The benchmarks run end to end in their quick mode and print their tables.

They print figures and assert no speed: this only pins that they still run against the
current schema and ledger, and that their output keeps the shape docs/performance.md quotes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RATIO = re.compile(r"\|\s+\d+\.\d+x\s+\|")


def _run_quick(module: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--backend", "sqlite"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


@pytest.mark.parametrize(
    ("module", "headings"),
    [
        pytest.param(
            "bench.record_flows",
            [
                "## Recording flows, sqlite: rows per second",
                "## Recording flows, sqlite: ratio to the baseline",
                "baseline rows/s",
                "(a) ledger rows/s",
                "(b) flowsRecord rows/s",
                "baseline/(a)",
                "baseline/(b)",
            ],
            id="record_flows",
        ),
        pytest.param(
            "bench.read_path",
            [
                "## Reading, sqlite: latency in ms",
                "## Reading, sqlite: SQL statements per request",
                "p50 ms",
                "p99 ms",
                "flows first:10 ",
                "flows first:100 ",
                "HTTP, 8 clients",
            ],
            id="read_path",
        ),
        pytest.param(
            "bench.gaps",
            [
                "## Circularity gaps, sqlite: 20 enterprises",
                "## Circularity gaps, sqlite: memory",
                "gaps list, all kinds",
                "UNBALANCED_BOOKS alone",
                "MISSING_FACTOR alone",
                "peak Python allocations",
            ],
            id="gaps",
        ),
        pytest.param(
            "bench.circularity",
            [
                "## Circularity indicators, sqlite: 20 enterprises",
                "## Circularity indicators, sqlite: memory",
                "circularity, park",
                "circularity, one enterprise",
                "EIP scorecard, park",
                "first 100 flows behind % circular inflow",
                "peak Python allocations",
            ],
            id="circularity",
        ),
        pytest.param(
            "bench.import_flows",
            [
                "## Importing a generic CSV: rows per second and peak RSS",
                "baseline rows/s",
                "import rows/s",
                "import peak MB",
                "| sqlite ",
            ],
            id="import_flows",
        ),
        pytest.param(
            "bench.load",
            [
                "## Load, sqlite: 8 connections, 3 s, 20% writes",
                "## Load, sqlite: every acknowledged write in the ledger exactly once",
                "GraphQL reads + flowsRecord",
                "load check, sqlite: OK",
            ],
            id="load",
        ),
    ],
)
def test_quick_benchmark_prints_its_tables_with_ratios(module: str, headings: list[str]) -> None:
    output = _run_quick(module)
    for heading in headings:
        assert heading in output
    assert RATIO.search(output), output
    assert "elapsed:" in output


def test_quick_postgraphile_benchmark_checks_both_answers_and_prints_ratios() -> None:
    from bench.common import postgres_unavailable
    from bench.postgraphile import POSTGRAPHILE_BIN, WRK

    reason = postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    if not POSTGRAPHILE_BIN.exists():
        pytest.skip("PostGraphile not installed: run `python -m bench.postgraphile` once (npm)")
    if not Path(WRK).exists():
        pytest.skip(f"wrk not found at {WRK}")
    completed = subprocess.run(
        [sys.executable, "-m", "bench.postgraphile", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = completed.stdout
    assert completed.returncode == 0, output + completed.stderr
    assert "## First 100 flows of one enterprise with totalCount" in output
    assert "answers checked equal: totalCount" in output
    for server in ("PostGraphile 4.14", "uncached", "cached in process"):
        assert server in output
    assert RATIO.search(output), output
