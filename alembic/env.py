"""Alembic environment: the tables of ``mfa.models`` against the database named in settings.

Run by ``alembic`` from the repository root (``alembic.ini``) and by ``mfa.migrations``, which
passes the URL in the config's ``sqlalchemy.url``. Migrations always use the sync drivers
(sqlite3, psycopg) through ``mfa.db.create_engine``, whatever driver the URL names, so the
SQLite pragmas (foreign keys on) apply here as on the request path.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import make_url

import mfa.models
from mfa.db import create_engine, sync_url
from mfa.settings import get_settings

config = context.config

# Only the command line has an ini file; a service calling mfa.migrations keeps its own logging.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = mfa.models.metadata


def get_url() -> str:
    """The URL the caller put in the config, else the service's own database."""
    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def run_migrations_offline() -> None:
    """Write the SQL to stdout (``alembic upgrade head --sql``) without a database."""
    url = get_url()
    context.configure(
        url=sync_url(url),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        compare_type=True,
        render_as_batch=_is_sqlite(url),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = get_url()
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                compare_type=True,
                # SQLite cannot ALTER most of a table: autogenerate writes batch operations
                # (copy, recreate, rename) for it instead.
                render_as_batch=_is_sqlite(url),
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
