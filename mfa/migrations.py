"""Schema migrations (Alembic), callable from the CLI and the app instead of the ``alembic`` tool.

The service never builds its schema with ``metadata.create_all`` outside tests: a database is
brought to the code's schema by ``upgrade`` and checked with ``is_current`` before serving, so
production and development databases follow the same, reviewed, sequence of revisions.

These functions are synchronous and block: they open their own sync engine (sqlite3 /
psycopg, see ``mfa.db.create_engine``). Call them before the event loop starts serving, or
from a worker thread, never from a coroutine on the loop.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from mfa.db import create_engine

ALEMBIC_DIR_ENV = "MFA_ALEMBIC_DIR"


def alembic_dir() -> Path:
    """The folder holding ``env.py`` and ``versions/``.

    In a checkout it sits beside the ``mfa`` package, at the repository root. It is not part of
    the installed package (an ``alembic`` package would shadow the Alembic library), so a
    container image copies it next to the installed code and names it with ``MFA_ALEMBIC_DIR``.
    """
    configured = os.environ.get(ALEMBIC_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[1] / "alembic"


def _script_config() -> Config:
    folder = alembic_dir()
    if not (folder / "env.py").is_file():
        raise FileNotFoundError(
            f"no Alembic environment at {folder}: set {ALEMBIC_DIR_ENV} to the folder holding "
            "env.py and versions/ (the repository's alembic/ folder)"
        )
    config = Config()
    config.set_main_option("script_location", str(folder))
    return config


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration for ``database_url``, built in code rather than read from
    ``alembic.ini``, so it works wherever the package is installed and leaves the caller's
    logging alone (``env.py`` configures logging only when an ini file is given)."""
    config = _script_config()
    # Config values go through configparser interpolation: a '%' in a URL-encoded password
    # must be doubled to survive it.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply every revision up to ``revision`` (the newest by default); a no-op when there."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Undo revisions down to ``revision``; ``"base"`` removes every table and trigger."""
    command.downgrade(alembic_config(database_url), revision)


def current_revision(database_url: str) -> str | None:
    """The revision the database is at, or ``None`` when no migration has run on it."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest revision this code ships, i.e. the schema the models expect."""
    head = ScriptDirectory.from_config(_script_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no revisions in {alembic_dir() / 'versions'}")
    return head


def is_current(database_url: str) -> bool:
    """Whether the database is at the code's schema, so the service may serve on it.

    False for an empty database and for one a revision behind (run ``upgrade``), and for one
    migrated by newer code (deploy that code, or ``downgrade`` with it).
    """
    return current_revision(database_url) == head_revision()
