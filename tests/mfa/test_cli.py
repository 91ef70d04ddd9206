"""The ``mfa`` command: migrate, an idempotent demo, and bad input refused by name."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from mfa import migrations
from mfa.auth import verify_secret
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


def test_client_create_prints_credentials_once_and_stores_only_their_hash(
    empty_database_url: str,
) -> None:
    assert runner.invoke(app, ["migrate", "--database-url", empty_database_url]).exit_code == 0
    created = runner.invoke(
        app, ["client", "create", "--role", "operator", "--database-url", empty_database_url]
    )
    assert created.exit_code == 0, created.output
    printed = dict(line.split(":", 1) for line in created.output.splitlines()[:3] if ":" in line)
    client_id, secret = printed["client_id"].strip(), printed["client_secret"].strip()
    assert printed["api_key"].strip() == f"{client_id}.{secret}"
    engine = create_engine(empty_database_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                sa.text("SELECT secret_hash FROM api_client WHERE client_id = :c"), {"c": client_id}
            ).scalar_one()
            event = connection.execute(
                sa.text("SELECT subject, action, operation, allowed FROM audit_event")
            ).one()
    finally:
        engine.dispose()
    assert secret not in stored
    assert verify_secret(secret, stored)
    assert event.subject.startswith("cli:")
    assert (event.action, event.operation, bool(event.allowed)) == (
        "administer",
        "cli client create",
        True,
    )

    unknown = runner.invoke(
        app,
        [
            *("client", "create", "--role", "auditor", "--park", "nope"),
            *("--database-url", empty_database_url),
        ],
    )
    assert unknown.exit_code == 2
    assert "--park" in unknown.output
    assert "nope" in unknown.output
