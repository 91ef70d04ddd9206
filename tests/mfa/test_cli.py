"""The ``mfa`` command: migrate, an idempotent demo, and bad input refused by name."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from mfa import migrations
from mfa.cli import app
from mfa.db import create_engine

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _counts(url: str) -> tuple[int, int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return tuple(  # type: ignore[return-value]
                connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("flow", "flow_confirmation", "stock_reading")
            )
    finally:
        engine.dispose()


def test_demo_loads_the_sample_park_once(empty_database_url: str) -> None:
    migrated = runner.invoke(app, ["migrate", "--database-url", empty_database_url])
    assert migrated.exit_code == 0, migrated.output
    assert f"revision {migrations.head_revision()}" in migrated.output

    first = runner.invoke(app, ["demo", "--database-url", empty_database_url])
    assert first.exit_code == 0, first.output
    with (ROOT / "datasets" / "sample_park" / "flows.csv").open() as handle:
        reports = sum(1 for _ in csv.DictReader(handle))
    assert f"{reports} flow reports" in first.output
    flows, confirmations, stocks = _counts(empty_database_url)
    assert flows + confirmations == reports  # every report is a flow or a confirmation

    second = runner.invoke(app, ["demo", "--database-url", empty_database_url])
    assert second.exit_code == 0, second.output
    assert "nothing added" in second.output
    assert _counts(empty_database_url) == (flows, confirmations, stocks)


def test_demo_on_an_unmigrated_database_says_to_migrate(empty_database_url: str) -> None:
    result = runner.invoke(app, ["demo", "--database-url", empty_database_url])
    assert result.exit_code == 2
    assert "--database-url" in result.output
    assert "mfa migrate" in result.output


@pytest.mark.parametrize(
    ("args", "option", "reason"),
    [
        (
            ["migrate", "--database-url", "mysql://root@localhost/x"],
            "--database-url",
            "unsupported",
        ),
        (["migrate", "--database-url", "::not a url::"], "--database-url", "cannot parse"),
        (
            ["demo", "--database-url", "postgresql://nobody@127.0.0.1:1/x"],
            "--database-url",
            "connect",
        ),
    ],
)
def test_bad_database_url_is_refused_naming_the_option(
    args: list[str], option: str, reason: str
) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"error: {option}:" in result.output
    assert reason in result.output


def test_unknown_revision_is_refused_naming_the_option(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = runner.invoke(app, ["migrate", "--database-url", url, "--revision", "nope"])
    assert result.exit_code == 2
    assert "error: --revision:" in result.output


def test_export_schema_prints_the_committed_contract() -> None:
    result = runner.invoke(app, ["export-schema"])
    assert result.exit_code == 0
    assert result.output == (ROOT / "graphql" / "schema.graphql").read_text()
