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
    ],
)
def test_quick_benchmark_prints_its_tables_with_ratios(module: str, headings: list[str]) -> None:
    output = _run_quick(module)
    for heading in headings:
        assert heading in output
    assert RATIO.search(output), output
    assert "elapsed:" in output
