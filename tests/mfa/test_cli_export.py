"""``mfa export``: files written with the figures of the ledger, bad arguments refused by name."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pandas as pd
import pytest
from alembic import command
from factories import make_footprint_world
from typer.testing import CliRunner

from mfa import migrations
from mfa.access import SYSTEM
from mfa.cli import app
from mfa.db import create_async, session_factory, transaction

runner = CliRunner()
PERIOD = ["--park", "fp", "--start", "2025-01-01", "--end", "2025-01-31"]


def DB(url: str) -> list[str]:
    return ["--database-url", url]


async def _load(url: str) -> None:
    engine = create_async(url)
    try:
        async with transaction(session_factory(engine)) as session:
            await make_footprint_world(session, SYSTEM)
    finally:
        await engine.dispose()


@pytest.fixture
def world_url(database_url: str) -> str:
    """The footprint world; the schema (built from the models, which
    tests/mfa/test_migrations.py proves equal to the migrations') stamped at head."""
    asyncio.run(_load(database_url))
    command.stamp(migrations.alembic_config(database_url), "head")
    return database_url


def test_export_writes_the_balances_as_parquet(world_url: str, tmp_path: Path) -> None:
    target = tmp_path / "balances.parquet"

    arguments = ["export", "balances", *PERIOD, "--format", "parquet"]

    result = runner.invoke(app, [*arguments, "--output", str(target), *DB(world_url)])

    assert result.exit_code == 0, result.output
    table = pd.read_parquet(target)
    mill = table[(table["entity_code"] == "mill") & table["material_code"].notna()]
    figures = mill.set_index(["material_code", "indicator"])["value"]
    assert figures[("electricity", "inputs")] == 2000  # 2 MWh in kWh
    assert figures[("coil", "outputs")] == 1000


def test_export_writes_pact_json_for_one_product(world_url: str, tmp_path: Path) -> None:
    target = tmp_path / "parts.json"

    arguments = ["export", "pact", *PERIOD, "--enterprise", "stamper", "--material", "parts"]

    result = runner.invoke(app, [*arguments, "--output", str(target), *DB(world_url)])

    assert result.exit_code == 0, result.output
    footprint = json.loads(target.read_text())["data"]
    assert footprint["pcf"]["declaredUnit"] == "kilogram"
    assert footprint["productIds"] == ["urn:circular-mfa:fp:product:stamper:parts"]


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        (["stocks", *PERIOD], "KIND"),
        (["flows", *PERIOD, "--format", "ods"], "--format"),
        (["pact", *PERIOD, "--format", "csv"], "--format"),
        (["flows", "--park", "fp", "--start", "1 Jan", "--end", "2025-01-31"], "--start"),
        (["flows", "--park", "fp", "--start", "2025-02-01", "--end", "2025-01-31"], "--end"),
        (["flows", "--park", "nowhere", "--start", "2025-01-01", "--end", "2025-01-31"], "--park"),
        (["pact", *PERIOD, "--material", "parts"], "--enterprise"),
    ],
)
def test_bad_arguments_are_refused_by_name_and_write_nothing(
    world_url: str, tmp_path: Path, arguments: list[str], option: str
) -> None:
    target = tmp_path / "out"

    result = runner.invoke(
        app, ["export", *arguments, "--output", str(target), "--database-url", world_url]
    )

    assert result.exit_code == 2, result.output
    assert f"error: {option}:" in result.output
    assert not target.exists()


def test_a_missing_option_is_named_by_typer(world_url: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["export", "flows", "--start", "2025-01-01", "--end", "2025-01-31", *DB(world_url)],
    )
    assert result.exit_code == 2
    assert "--park" in result.output
