"""The ``mfa`` command: serve the API, migrate the database, load the sample park."""

from __future__ import annotations

import asyncio
import getpass
import os
from typing import Annotated, NoReturn

import sqlalchemy as sa
import typer
from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from mfa import migrations
from mfa.access import Caller
from mfa.db import create_async, session_factory, transaction
from mfa.models import Park
from mfa.sample import SampleLoad, load_sample_park
from mfa.settings import Settings, get_settings

app = typer.Typer(help="circular-mfa: the flow ledger of an industrial park.", no_args_is_help=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL, e.g. sqlite:///var/mfa.db or postgresql://user@host/db. "
        "Defaults to the MFA_DATABASE_URL setting.",
        show_default=False,
    ),
]


def _fail(option: str, message: str) -> NoReturn:
    """Refuse a command's input: name the option and the reason, exit 2, change nothing."""
    typer.echo(f"error: {option}: {message}", err=True)
    raise typer.Exit(2)


def _settings(database_url: str | None) -> Settings:
    try:
        return Settings(database_url=database_url) if database_url else get_settings()
    except ValidationError as exc:
        option = "--database-url" if database_url else "MFA_* settings"
        _fail(option, "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors()))


def _require_current_schema(settings: Settings) -> None:
    try:
        current = migrations.current_revision(settings.database_url)
    except OperationalError as exc:
        _fail("--database-url", f"cannot connect: {str(exc.orig).strip().splitlines()[0]}")
    if current != migrations.head_revision():
        _fail(
            "--database-url",
            f"the database is at revision {current or 'none'}, not "
            f"{migrations.head_revision()}: run `mfa migrate` first",
        )


def _cli_caller() -> Caller:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user id with no account (OpenShift, --user)
        user = f"uid:{os.getuid()}"
    return Caller(subject=f"cli:{user}")


async def _load_sample(settings: Settings, *, only_if_empty: bool) -> SampleLoad | None:
    engine = create_async(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            if only_if_empty:
                parks = (
                    await session.execute(sa.select(sa.func.count()).select_from(Park))
                ).scalar()
                if parks:
                    return None
            return await load_sample_park(
                session, caller=_cli_caller(), datasets=settings.datasets_dir
            )
    finally:
        await engine.dispose()


def _report(load: SampleLoad | None) -> None:
    if load is None:
        typer.echo("the database already holds a park: sample park not loaded")
    elif not load.loaded:
        typer.echo("sample park already loaded: nothing added")
    else:
        typer.echo(
            f"sample park loaded: {load.nodes} nodes, {load.materials} materials, "
            f"{load.flows} flow reports, {load.stocks} stock readings"
        )


@app.command()
def migrate(
    database_url: DatabaseUrl = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Bring the database schema to REVISION (the latest by default)."""
    settings = _settings(database_url)
    try:
        migrations.upgrade(settings.database_url, revision)
    except CommandError as exc:
        _fail("--revision", str(exc))
    except OperationalError as exc:
        _fail("--database-url", f"cannot connect: {str(exc.orig).strip().splitlines()[0]}")
    typer.echo(f"database at revision {migrations.current_revision(settings.database_url)}")


@app.command()
def demo(database_url: DatabaseUrl = None) -> None:
    """Load the synthetic sample park; running it again adds nothing."""
    settings = _settings(database_url)
    _require_current_schema(settings)
    _report(asyncio.run(_load_sample(settings, only_if_empty=False)))


@app.command()
def serve(
    database_url: DatabaseUrl = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Migrate the database first.")
    ] = False,
    sample_if_empty: Annotated[
        bool,
        typer.Option(
            "--sample-if-empty/--no-sample", help="Load the sample park into an empty database."
        ),
    ] = False,
) -> None:
    """Serve the GraphQL API (and GraphiQL outside production) at /graphql."""
    import uvicorn

    from mfa.app import create_app

    settings = _settings(database_url)
    if migrate_first:
        migrate(database_url=settings.database_url)
    _require_current_schema(settings)
    if sample_if_empty:
        _report(asyncio.run(_load_sample(settings, only_if_empty=True)))
    typer.echo(f"serving GraphQL at http://{host}:{port}/graphql")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@app.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL SDL (committed as graphql/schema.graphql)."""
    from mfa.api.schema import export_sdl

    typer.echo(export_sdl(), nl=False)


if __name__ == "__main__":
    app()
