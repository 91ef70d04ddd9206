"""The ``mfa`` command: serve the API, migrate the database, load the sample park."""

from __future__ import annotations

import asyncio
import getpass
from typing import Annotated

import sqlalchemy as sa
import typer

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


def _settings(database_url: str | None) -> Settings:
    return Settings(database_url=database_url) if database_url else get_settings()


def _cli_caller() -> Caller:
    return Caller(subject=f"cli:{getpass.getuser()}")


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
    migrations.upgrade(settings.database_url, revision)
    typer.echo(f"database at revision {migrations.current_revision(settings.database_url)}")


@app.command()
def demo(database_url: DatabaseUrl = None) -> None:
    """Load the synthetic sample park; running it again adds nothing."""
    settings = _settings(database_url)
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
        migrations.upgrade(settings.database_url)
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
