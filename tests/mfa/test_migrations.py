"""Migrations: the Alembic revisions build exactly the models' schema, triggers included, and
``downgrade`` takes it all away again.

Every test starts from an EMPTY database of its own, not the ``database_url`` fixture, whose
schema comes from ``metadata.create_all``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mfa import migrations
from mfa.db import create_engine
from mfa.models import metadata
from mfa.models.guard import APPEND_ONLY_TABLES
from mfa.models.version import trigger_names, versioned_tables


@pytest.fixture
def sync_engine(empty_database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(empty_database_url)
    yield engine
    engine.dispose()


def _tables(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        return set(sa.inspect(connection).get_table_names())


def _triggers(engine: sa.Engine) -> list[str]:
    query = {
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger'",
        "postgresql": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal",
    }[engine.dialect.name]
    with engine.connect() as connection:
        return sorted(connection.execute(sa.text(query)).scalars())


def _check_constraints(connection: sa.Connection) -> dict[str, set[str | None]]:
    inspector = sa.inspect(connection)
    return {
        table: {check["name"] for check in inspector.get_check_constraints(table)}
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }


def _trigger_functions(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.text("SELECT count(*) FROM pg_proc WHERE proname = 'mfa_ledger_append_only'")
            ).scalar_one()
        )


def _expected_triggers(dialect: str) -> list[str]:
    suffixes = {
        "sqlite": ("no_update", "no_delete"),
        "postgresql": ("append_only", "no_truncate"),
    }[dialect]
    append_only = [f"{table}_{suffix}" for table in APPEND_ONLY_TABLES for suffix in suffixes]
    versions = [
        name for t in versioned_tables(metadata.tables.values()) for name in trigger_names(t.name)
    ]
    return sorted(append_only + versions)


def test_upgrade_builds_every_table_of_the_models_and_nothing_differs(
    empty_database_url: str, sync_engine: sa.Engine
) -> None:
    assert _tables(sync_engine) == set()

    migrations.upgrade(empty_database_url)

    assert _tables(sync_engine) == {*metadata.tables, "alembic_version"}
    with sync_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
        checks = _check_constraints(connection)
    assert diff == [], "\n".join(map(repr, diff))
    # Autogenerate does not compare CHECK constraints: compare their names here.
    assert checks == {
        name: {c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)}
        for name, table in metadata.tables.items()
    }


def test_upgrade_creates_each_append_only_trigger_once(
    empty_database_url: str, sync_engine: sa.Engine
) -> None:
    migrations.upgrade(empty_database_url)

    assert _triggers(sync_engine) == _expected_triggers(sync_engine.dialect.name)
    if sync_engine.dialect.name == "postgresql":
        assert _trigger_functions(sync_engine) == 1


def _insert_one_flow(engine: sa.Engine) -> None:
    statements = [
        "INSERT INTO park (id, code, name, country, created_at) "
        "VALUES (1, 'p', 'Park', 'VN', CURRENT_TIMESTAMP)",
        "INSERT INTO park_node (id, park_id, code, name, kind, isic_code, created_at) "
        "VALUES (1, 1, 'mill', 'Mill', 'enterprise', '2410', CURRENT_TIMESTAMP)",
        "INSERT INTO park_node (id, park_id, code, name, kind, created_at) "
        "VALUES (2, 1, 'dump', 'Landfill', 'landfill', CURRENT_TIMESTAMP)",
        "INSERT INTO material (id, code, name, kind, dimension, hazardous, renewable, "
        "secondary, created_at) "
        "VALUES (1, 'slag', 'Slag', 'waste', 'mass', false, false, false, CURRENT_TIMESTAMP)",
        "INSERT INTO flow (id, park_id, source_id, target_id, material_id, quantity, unit, "
        "reported_quantity, reported_unit, period_start, period_end, reporting_party_id, "
        "recorded_by, recorded_at) "
        "VALUES (1, 1, 1, 2, 1, 1000, 'kg', '1', 't', '2025-01-01', '2025-01-31', 1, "
        "'tester', CURRENT_TIMESTAMP)",
    ]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))


def test_ledger_rows_cannot_be_changed_after_upgrade(
    empty_database_url: str, sync_engine: sa.Engine
) -> None:
    migrations.upgrade(empty_database_url)
    _insert_one_flow(sync_engine)
    refused = [
        "UPDATE flow SET quantity = 1 WHERE id = 1",
        "DELETE FROM flow WHERE id = 1",
    ]
    if sync_engine.dialect.name == "postgresql":
        refused.append("TRUNCATE flow CASCADE")

    for statement in refused:
        with (
            pytest.raises(sa.exc.DBAPIError, match="append-only"),
            sync_engine.begin() as connection,
        ):
            connection.execute(sa.text(statement))

    with sync_engine.connect() as connection:
        row = connection.execute(sa.text("SELECT quantity FROM flow WHERE id = 1")).one()
    assert row.quantity == 1000


def test_downgrade_to_base_leaves_nothing_and_upgrade_runs_again(
    empty_database_url: str, sync_engine: sa.Engine
) -> None:
    migrations.upgrade(empty_database_url)

    migrations.downgrade(empty_database_url)

    assert _tables(sync_engine) <= {"alembic_version"}
    assert migrations.current_revision(empty_database_url) is None
    assert _triggers(sync_engine) == []
    if sync_engine.dialect.name == "postgresql":
        assert _trigger_functions(sync_engine) == 0

    migrations.upgrade(empty_database_url)

    assert _tables(sync_engine) == {*metadata.tables, "alembic_version"}
    assert _triggers(sync_engine) == _expected_triggers(sync_engine.dialect.name)


def test_is_current_only_once_upgraded_to_head(empty_database_url: str) -> None:
    assert migrations.current_revision(empty_database_url) is None
    assert not migrations.is_current(empty_database_url)

    migrations.upgrade(empty_database_url)

    assert migrations.current_revision(empty_database_url) == migrations.head_revision()
    assert migrations.is_current(empty_database_url)


@pytest.mark.parametrize(
    ("url", "trigger"),
    [
        ("sqlite:///offline.db", "CREATE TRIGGER flow_no_update"),
        ("postgresql://nobody@offline.invalid/mfa", "CREATE TRIGGER flow_append_only"),
    ],
)
def test_offline_mode_writes_the_sql_with_the_triggers(url: str, trigger: str) -> None:
    config = migrations.alembic_config(url)
    config.output_buffer = io.StringIO()

    command.upgrade(config, "head", sql=True)

    sql = config.output_buffer.getvalue()
    assert "CREATE TABLE flow" in sql
    assert trigger in sql


def test_config_keeps_a_percent_encoded_password_intact() -> None:
    url = "postgresql://mfa:p%40ss%25word@db.example/mfa"

    assert migrations.alembic_config(url).get_main_option("sqlalchemy.url") == url


def test_alembic_folder_can_be_moved_with_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(migrations.ALEMBIC_DIR_ENV, str(tmp_path))

    assert migrations.alembic_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match=migrations.ALEMBIC_DIR_ENV):
        migrations.head_revision()
