"""Without PostgreSQL the PostgreSQL half is skipped with its reason shown; under CI it fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = "tests/mfa/test_ledger.py::test_reversal_negates_the_original_and_cannot_repeat"


def _run(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["MFA_TEST_POSTGRES_URL"] = "postgresql://postgres@127.0.0.1:1/test"
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_postgres_half_is_skipped_with_the_reason_when_the_server_is_absent() -> None:
    result = _run(ci=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout
    assert "PostgreSQL not reachable at postgresql://postgres@127.0.0.1:1/test" in result.stdout


def test_missing_postgres_fails_the_run_under_ci() -> None:
    result = _run(ci=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed, 1 error" in result.stdout  # pytest.fail in a fixture is an error
    assert "CI=true" in result.stdout
