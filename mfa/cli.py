"""The ``mfa`` command: serve the API, migrate the database, load the sample park."""

from __future__ import annotations

import asyncio
import getpass
import os
from pathlib import Path
from typing import Annotated, NoReturn

import sqlalchemy as sa
import typer
from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from mfa import migrations
from mfa.access import Caller, Role
from mfa.audit import audited_transaction
from mfa.auth import ClientCreate, IssuedCredentials, create_client
from mfa.db import create_async, session_factory, transaction
from mfa.errors import MfaError
from mfa.models import ImportJob, ImportStatus, Park, ParkNode
from mfa.sample import SampleLoad, load_sample_park
from mfa.settings import Environment, Settings, get_settings

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
    return Caller(subject=f"cli:{user}", role=Role.OPERATOR)


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
    if settings.environment is not Environment.PRODUCTION:
        token = asyncio.run(_development_token(settings))
        typer.echo(
            "development token (operator, valid 24 h; never issued in production):\n"
            f"  {token}\n"
            f"  send it as the header  Authorization: Bearer {token}"
        )
    typer.echo(f"serving GraphQL at http://{host}:{port}/graphql")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


async def _development_token(settings: Settings) -> str:
    from mfa.auth import development_token

    engine = create_async(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            return await development_token(session, settings=settings)
    finally:
        await engine.dispose()


client_app = typer.Typer(help="API clients and their credentials.", no_args_is_help=True)
app.add_typer(client_app, name="client")


async def _create_client(
    settings: Settings, *, name: str, role: Role, park: str | None, enterprise: str | None
) -> IssuedCredentials:
    engine = create_async(settings.database_url)
    try:
        async with audited_transaction(
            session_factory(engine), operation="cli client create"
        ) as session:
            park_id = enterprise_id = None
            park_t = Park.__table__  # type: ignore[attr-defined]
            node_t = ParkNode.__table__  # type: ignore[attr-defined]
            if park is not None:
                park_id = (
                    await session.execute(sa.select(park_t.c.id).where(park_t.c.code == park))
                ).scalar()
                if park_id is None:
                    _fail("--park", f"no park with code {park!r}")
            if enterprise is not None:
                enterprise_id = (
                    await session.execute(
                        sa.select(node_t.c.id).where(
                            node_t.c.park_id == park_id, node_t.c.code == enterprise
                        )
                    )
                ).scalar()
                if enterprise_id is None:
                    _fail("--enterprise", f"no node {enterprise!r} in park {park!r}")
            return await create_client(
                session,
                ClientCreate(name=name, role=role, park_id=park_id, enterprise_id=enterprise_id),
                caller=_cli_caller(),
            )
    finally:
        await engine.dispose()


@client_app.command("create")
def client_create(
    role: Annotated[Role, typer.Option(help="What the client may do.")],
    park: Annotated[
        str | None, typer.Option(help="Code of its park (every role but operator).")
    ] = None,
    enterprise: Annotated[
        str | None, typer.Option(help="Code of its enterprise (role enterprise).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Who it is; defaults to role and park.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Issue credentials for a new API client and print them, once: only a hash is kept."""
    settings = _settings(database_url)
    _require_current_schema(settings)
    label = name or " ".join(x for x in (role.value, park, enterprise) if x)
    try:
        issued = asyncio.run(
            _create_client(settings, name=label, role=role, park=park, enterprise=enterprise)
        )
    except MfaError as exc:
        _fail(f"--{exc.field[0] if exc.field else 'role'}", exc.message)
    typer.echo(
        f"client_id:     {issued.client_id}\n"
        f"client_secret: {issued.client_secret}\n"
        f"api_key:       {issued.api_key}\n"
        "The secret is shown once. Get a token with\n"
        f"  curl -u '{issued.client_id}:<secret>' -d grant_type=client_credentials "
        "http://HOST:PORT/auth/token\n"
        "or send the header  X-API-Key: <api_key>"
    )


async def _export(settings: Settings, **arguments: str | None) -> bytes:
    from datetime import UTC, datetime

    from lca.footprint import FootprintCache
    from mfa.exports.service import export_file

    engine = create_async(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            file = await export_file(
                session,
                caller=_cli_caller(),
                tolerance=settings.balance_tolerance,
                cache=FootprintCache(),
                run=asyncio.to_thread,
                created=datetime.now(UTC),
                **arguments,  # type: ignore[arg-type]
            )
        return file.content
    finally:
        await engine.dispose()


@app.command("export")
def export(
    kind: Annotated[str, typer.Argument(help="flows, balances, indicators, footprints or pact.")],
    park: Annotated[str, typer.Option(help="Code of the park.")],
    start: Annotated[str, typer.Option(help="First day of the period, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last day of the period (inclusive), YYYY-MM-DD.")],
    output: Annotated[Path, typer.Option(help="File to write.", dir_okay=False)],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv, xlsx or parquet (csv by default); json for pact."),
    ] = None,
    enterprise: Annotated[str | None, typer.Option(help="pact: the product's maker.")] = None,
    material: Annotated[str | None, typer.Option(help="pact: the product's material.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Export a tidy table, or PACT product footprints (JSON), of a park and period."""
    from mfa.exports.service import argument_of

    settings = _settings(database_url)
    _require_current_schema(settings)
    try:
        content = asyncio.run(
            _export(
                settings,
                kind=kind,
                fmt=fmt,
                park=park,
                start=start,
                end=end,
                enterprise=enterprise,
                material=material,
            )
        )
    except MfaError as exc:
        argument = argument_of(exc)
        _fail("KIND" if argument == "kind" else f"--{argument}", exc.message)
    output.write_bytes(content)
    typer.echo(f"{kind} written to {output} ({len(content)} bytes)")


async def _import(
    settings: Settings,
    *,
    path: Path,
    profile: str,
    park: str,
    enterprise: str | None,
    dry_run: bool,
    good_rows_only: bool,
    encoding: str | None,
    sheet: str | None,
) -> ImportJob:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from mfa.imports import jobs

    job_settings = jobs.JobSettings.of(settings)
    caller = _cli_caller()
    engine = create_async(settings.database_url)
    factory = session_factory(engine)
    try:
        async with transaction(factory) as session:
            park_id, enterprise_id = await jobs.park_ids(session, park, enterprise)
            request = jobs.ImportRequest(
                park_id=park_id,
                enterprise_id=enterprise_id,
                profile=profile,
                path=path,
                file_name=path.name,
                dry_run=dry_run,
                good_rows_only=good_rows_only,
                encoding=encoding,
                sheet=sheet,
            )
            job = await jobs.create_job(session, request, caller=caller, settings=job_settings)
        assert job.id is not None
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task("validating", total=None)

            def show(state: jobs.JobProgress) -> None:
                bar.update(
                    task, description=state.phase, completed=state.rows_done, total=state.rows_total
                )

            return await jobs.run_job(
                factory, job.id, caller=caller, settings=job_settings, on_progress=show
            )
    finally:
        await engine.dispose()


@app.command("import")
def import_file(
    file: Annotated[
        Path, typer.Argument(help="CSV, xlsx or Parquet export.", exists=True, dir_okay=False)
    ],
    profile: Annotated[
        str, typer.Option(help="generic, sap_mb51, odoo_stock_move or a profile JSON file.")
    ],
    park: Annotated[str, typer.Option(help="Code of the park.")],
    enterprise: Annotated[
        str | None,
        typer.Option(help="Code of the enterprise whose books the file is (ERP profiles)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and count; record nothing.")
    ] = False,
    good_rows_only: Annotated[
        bool,
        typer.Option("--good-rows-only", help="Record the good rows even if some are rejected."),
    ] = False,
    encoding: Annotated[
        str | None, typer.Option(help="Text encoding when not UTF-8, e.g. cp1258.")
    ] = None,
    sheet: Annotated[str | None, typer.Option(help="Sheet of an xlsx workbook.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Import a file of stock movements as one ledger batch, all or nothing, once."""
    from mfa.imports.jobs import rejected_path

    settings = _settings(database_url)
    _require_current_schema(settings)
    try:
        job = asyncio.run(
            _import(
                settings,
                path=file.resolve(),
                profile=profile,
                park=park,
                enterprise=enterprise,
                dry_run=dry_run,
                good_rows_only=good_rows_only,
                encoding=encoding,
                sheet=sheet,
            )
        )
    except MfaError as exc:
        _fail(f"--{exc.field[0]}" if exc.field else "FILE", exc.message)
    typer.echo(f"import job {job.id}: {job.status.value}: {job.message}")
    for error in job.errors[:20]:
        typer.echo(
            f"  row {error['row']}, column {error['column']!r}, value {error['value']!r}: "
            f"{error['reason']}"
        )
    if job.error_count > 20:
        typer.echo(f"  ... and {job.error_count - 20} more")
    if job.error_count:
        assert job.id is not None
        typer.echo(f"rejected rows: {rejected_path(settings.import_dir, job.id)}")
    if job.status is ImportStatus.FAILED:
        raise typer.Exit(1)


@app.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL SDL (committed as graphql/schema.graphql)."""
    from mfa.api.schema import export_sdl

    typer.echo(export_sdl(), nl=False)


if __name__ == "__main__":
    app()
