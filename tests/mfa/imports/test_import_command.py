"""``mfa import``: a dry run records nothing, the import records the file once, and a bad
row is reported by row, column and value with the file of rejected rows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import rich
import sqlalchemy as sa
from factories import make_world
from typer.testing import CliRunner

from mfa import migrations
from mfa.access import SYSTEM
from mfa.cli import app
from mfa.db import create_async, create_engine, session_factory, transaction

runner = CliRunner()
HEADER = "external_id,movement,enterprise,partner,material,quantity,unit,date"


def _flows(url: str) -> list[tuple[float, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [
                (r.quantity, r.unit)
                for r in connection.execute(sa.text("SELECT quantity, unit FROM flow ORDER BY id"))
            ]
    finally:
        engine.dispose()


async def _world(url: str) -> None:
    engine = create_async(url)
    async with transaction(session_factory(engine)) as session:
        await make_world(session, SYSTEM)
    await engine.dispose()


def _moves(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A migrated database with the test park, and a file of two of its movements."""
    monkeypatch.setenv("MFA_IMPORT_DIR", str(tmp_path / "imports"))
    migrations.upgrade(url, "head")
    asyncio.run(_world(url))
    path = tmp_path / "moves.csv"
    path.write_text(
        f"{HEADER}\nA-1,receipt,mill,supplier,steel-coil,2,t,2025-01-06\n"
        "A-2,issue,mill,customer,steel-coil,500,kg,2025-01-07\n"
    )
    return path


def test_mfa_import_dry_runs_records_once_and_names_bad_rows(
    empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _moves(empty_database_url, tmp_path, monkeypatch)
    base = ["import", str(path), "--profile", "generic", "--park", "test-park"]
    base += ["--database-url", empty_database_url]
    dry = runner.invoke(app, [*base, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "validated: 2 rows: would record 2" in dry.output
    assert _flows(empty_database_url) == []
    done = runner.invoke(app, base)
    assert done.exit_code == 0, done.output
    assert "succeeded: 2 rows: recorded 2" in done.output
    assert _flows(empty_database_url) == [(2000.0, "kg"), (500.0, "kg")]
    again = runner.invoke(app, base)
    assert "recorded 0, 2 already imported" in again.output
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{HEADER}\nB-1,receipt,mill,supplier,steel-coil,2,bags,2025-01-06\n")
    refused = runner.invoke(app, [*base[:1], str(bad), *base[2:]])
    assert refused.exit_code == 1
    assert "row 2, column 'unit', value 'bags': unit not known to profile generic" in (
        refused.output
    )
    assert "rejected rows: " in refused.output
    assert len(_flows(empty_database_url)) == 2
    unknown = runner.invoke(app, [*base[:3], "nope", *base[4:]])
    assert unknown.exit_code == 2
    assert "--profile: no import profile 'nope'" in unknown.output


def test_mfa_import_shows_a_progress_bar_of_the_rows_read_on_a_terminal(
    empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an interactive terminal (``TTY_INTERACTIVE`` and ``TTY_COMPATIBLE``, which rich
    honours) the bar names the phase and counts the rows done; a CSV file's total is unknown
    while it is read once."""
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setattr(rich, "_console", None)  # made anew, reading the environment
    path = _moves(empty_database_url, tmp_path, monkeypatch)
    base = ["import", str(path), "--profile", "generic", "--park", "test-park"]
    result = runner.invoke(app, [*base, "--database-url", empty_database_url])
    assert result.exit_code == 0, result.output
    assert "recording" in result.output
    assert "2/?" in result.output
    assert result.output.rstrip().endswith("0 rejected")
