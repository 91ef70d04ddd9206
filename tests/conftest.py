"""Databases for the tests: every test that touches one runs on SQLite and on PostgreSQL.

Each test gets its own database, copied from a template made once per run: a file copy on
SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL. Two templates exist: an empty schema
and the sample park loaded. PostgreSQL is the server on 127.0.0.1:5432 (override with
``MFA_TEST_POSTGRES_URL``); when it is down its half of the suite is skipped with the reason
shown, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from mfa.access import SYSTEM, Caller, Role
from mfa.app import create_app
from mfa.auth import ClientCreate, create_client, issue_token
from mfa.db import create_async, create_engine, session_factory, transaction
from mfa.models import metadata
from mfa.sample import load_sample_park
from mfa.settings import Environment, Settings

PG_URL = os.environ.get("MFA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
RUN_ID = uuid.uuid4().hex[:8]
TESTER = Caller(subject="tester", role=Role.OPERATOR)
"""The caller of domain tests and of the ``gql`` clients: the operator, who may do anything."""


def _pg_admin() -> psycopg.Connection:
    return psycopg.connect(
        sa.make_url(PG_URL)
        .render_as_string(hide_password=False)
        .replace("postgresql+psycopg", "postgresql"),
        autocommit=True,
        connect_timeout=3,
    )


def _pg_url(database: str) -> str:
    return sa.make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


class Templates:
    """Creates template databases lazily and hands out fresh copies of them."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self.workdir = workdir
        self._made: dict[str, str] = {}
        self._copies: list[str] = []

    def _create_empty(self, name: str) -> str:
        if self.backend == "sqlite":
            url = f"sqlite:///{self.workdir / (name + '.db')}"
        else:
            with _pg_admin() as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            url = _pg_url(name)
        engine = create_engine(url)
        metadata.create_all(engine)
        engine.dispose()
        return url

    def template(self, kind: str) -> str:
        if kind not in self._made:
            name = f"mfa_{RUN_ID}_{kind}"
            url = self._create_empty(name)
            if kind == "sample":
                asyncio.run(_load_sample(url))
            self._made[kind] = url
        return self._made[kind]

    def copy(self, kind: str) -> str:
        source = sa.make_url(self.template(kind))
        name = f"mfa_{RUN_ID}_{uuid.uuid4().hex[:8]}"
        if self.backend == "sqlite":
            assert source.database is not None
            target = self.workdir / f"{name}.db"
            shutil.copyfile(source.database, target)
            return f"sqlite:///{target}"
        with _pg_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source.database}"')
        self._copies.append(name)
        return _pg_url(name)

    def drop_all(self) -> None:
        if self.backend != "postgresql" or not (self._made or self._copies):
            return
        with _pg_admin() as admin:
            for name in [*self._copies, *(sa.make_url(u).database for u in self._made.values())]:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _load_sample(url: str) -> None:
    engine = create_async(url)
    try:
        async with transaction(session_factory(engine)) as session:
            await load_sample_park(
                session, caller=Caller(subject="sample-loader", role=Role.OPERATOR)
            )
    finally:
        await engine.dispose()


def _postgres_available() -> str | None:
    try:
        with _pg_admin():
            return None
    except psycopg.OperationalError as exc:
        return f"PostgreSQL not reachable at {PG_URL}: {str(exc).strip().splitlines()[0]}"


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Templates]]:
    workdir = tmp_path_factory.mktemp("databases")
    made = {"sqlite": Templates("sqlite", workdir), "postgresql": Templates("postgresql", workdir)}
    yield made
    made["postgresql"].drop_all()


@pytest.fixture(scope="session")
def postgres_reason() -> str | None:
    return _postgres_available()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, postgres_reason: str | None) -> str:
    if request.param == "postgresql" and postgres_reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{postgres_reason} (CI=true: the PostgreSQL half may not be skipped)")
        pytest.skip(postgres_reason)
    return str(request.param)


@pytest.fixture
def database_url(backend: str, templates: dict[str, Templates]) -> str:
    """A fresh database with the schema and nothing in it."""
    return templates[backend].copy("empty")


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, dropped after the test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    name = f"mfa_mig_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sample_database_url(backend: str, templates: dict[str, Templates]) -> str:
    """A fresh database holding the sample park."""
    return templates[backend].copy("sample")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session in an open transaction, committed at the end of a passing test."""
    async with transaction(session_factory(engine)) as session:
        yield session


@pytest.fixture
def caller() -> Caller:
    return TESTER


@pytest.fixture
def count_statements() -> Callable[[AsyncEngine], list[str]]:
    """Attach to an engine; the returned list fills with every SQL statement it runs."""

    def attach(engine: AsyncEngine) -> list[str]:
        statements: list[str] = []

        @sa.event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _record(_conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement)

        return statements

    return attach


class GraphQLClient:
    """Posts GraphQL documents to the app in process, over its real ASGI interface."""

    def __init__(
        self, http: httpx.AsyncClient, app: FastAPI, headers: dict[str, str] | None = None
    ) -> None:
        self.http = http
        self.app = app
        self.headers = headers or {}

    def with_token(self, token: str) -> GraphQLClient:
        """The same app, authenticated by ``token`` instead of the tester's (``raw`` and calls
        only: ``http`` keeps the tester's credentials)."""
        return GraphQLClient(self.http, self.app, {"Authorization": f"Bearer {token}"})

    async def raw(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=self.headers
        )
        body: dict[str, Any] = response.json()
        return body

    async def __call__(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        """The ``data`` of a response that must have no errors."""
        body = await self.raw(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]


async def _client(url: str) -> AsyncIterator[GraphQLClient]:
    settings = Settings(database_url=url, environment=Environment.TEST)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    token, _ = issue_token(
        client_id=TESTER.subject,
        role=Role.OPERATOR,
        park_id=None,
        enterprise_id=None,
        settings=settings,
    )
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as http:
        yield GraphQLClient(http, app)
    await app.state.engine.dispose()


@pytest.fixture
async def gql(database_url: str) -> AsyncIterator[GraphQLClient]:
    """The API over an empty database."""
    async for client in _client(database_url):
        yield client


@pytest.fixture
async def sample_gql(sample_database_url: str) -> AsyncIterator[GraphQLClient]:
    """The API over a copy of the sample park."""
    async for client in _client(sample_database_url):
        yield client


ClientAs = Callable[..., Awaitable[GraphQLClient]]


@pytest.fixture
def client_as() -> ClientAs:
    """``await client_as(gql, Role.AUDITOR, park_id=1)``: a client of ``gql``'s app
    authenticated as a new API client of that role (a real ``api_client`` row, so a partner's
    shares apply)."""

    async def make(
        gql: GraphQLClient,
        role: Role,
        *,
        park_id: int | None = None,
        enterprise_id: int | None = None,
        name: str | None = None,
    ) -> GraphQLClient:
        settings: Settings = gql.app.state.settings
        async with transaction(session_factory(gql.app.state.engine)) as session:
            issued = await create_client(
                session,
                ClientCreate(name or f"test {role.value}", role, park_id, enterprise_id),
                caller=SYSTEM,
            )
        token, _ = issue_token(
            client_id=issued.client_id,
            role=role,
            park_id=park_id,
            enterprise_id=enterprise_id,
            settings=settings,
        )
        return gql.with_token(token)

    return make
