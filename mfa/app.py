"""The FastAPI application: GraphQL at /graphql, health at /healthz, GraphiQL in development."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from cross_web import HTTPException
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.fastapi import GraphQLRouter
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

from lca.footprint import FootprintCache
from mfa import __version__
from mfa.api import graphiql
from mfa.api.auth import authenticate, install_token_endpoint
from mfa.api.cache import install_cache
from mfa.api.context import Context
from mfa.api.encoding import OrjsonEncoding
from mfa.api.exports import exports_router
from mfa.api.http import GraphQLOverHTTP, install
from mfa.api.imports import imports_router
from mfa.api.schema import build_schema
from mfa.db import create_async, session_factory
from mfa.imports import lease
from mfa.migrations import is_current
from mfa.settings import Settings, get_settings

log = logging.getLogger("mfa.api")


class _Router(OrjsonEncoding, GraphQLOverHTTP, GraphQLRouter[Context, None]):
    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(graphiql.page(str(request.url.path)))

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        """As strawberry's, but a mutation over GET is 405 Method Not Allowed (GraphQL over
        HTTP), not 400."""
        try:
            return await super().execute_single(*args, **kwargs)
        except HTTPException as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                raise HTTPException(405, exc.reason) from exc
            raise


def freeze_heap() -> None:
    """Take every object alive once the app is built out of the garbage collector's scans.

    Modules, the GraphQL schema, pint's registry and Brightway's imports are some 10^6
    long-lived objects; CPython's collector walks them on every full collection, which a
    10,000-row ``flowsRecord`` triggers a dozen times: about 15% of its time
    (docs/performance.md). Frozen objects are still freed normally by reference counting.
    """
    gc.collect()
    gc.freeze()


async def _settle_interrupted_imports(factory: async_sessionmaker[AsyncSession]) -> None:
    """Fail the import jobs whose process died (``mfa.imports.lease``), when the database
    answers: a server must start, and report itself unready, on a database that is down or
    not migrated yet."""
    try:
        await lease.sweep(factory)
    except (DBAPIError, OSError) as exc:
        log.warning("could not look for interrupted import jobs: %s", exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = create_async(settings.database_url, echo=settings.sql_echo)
    factory = session_factory(engine)
    footprints = FootprintCache()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await _settle_interrupted_imports(factory)
        freeze_heap()
        yield
        await engine.dispose()

    app = FastAPI(
        title="circular-mfa",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.footprints = footprints
    app.state.settings = settings

    async def context(request: Request) -> Context:
        return Context(
            factory=factory,
            settings=settings,
            caller=await authenticate(request, factory, settings),
            footprints=footprints,
        )

    router = _Router(
        build_schema(settings),
        context_getter=context,
        graphql_ide="graphiql" if settings.graphiql else None,
    )
    app.include_router(router, prefix="/graphql")
    if settings.graphiql:
        app.mount(
            graphiql.ASSETS_URL,
            StaticFiles(directory=graphiql.assets_directory()),
            name="graphiql-assets",
        )

    install_cache(
        app,
        settings=settings,
        schema=router.schema,
        engine=engine,
        caller_for=lambda request: authenticate(request, factory, settings),
    )  # before ``install``: its guard runs first, then the cache
    install(app, settings)
    install_token_endpoint(app, factory, settings)
    app.include_router(
        exports_router(
            factory=factory,
            settings=settings,
            footprints=footprints,
            caller_for=lambda request: authenticate(request, factory, settings),
        )
    )
    app.include_router(
        imports_router(
            factory=factory,
            settings=settings,
            caller_for=lambda request: authenticate(request, factory, settings),
        )
    )

    async def database_answers() -> str | None:
        """None when the database runs ``SELECT 1`` through the app's pool, else why not."""
        try:
            async with engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
        except Exception as exc:  # any failure to reach the database
            return type(exc).__name__
        return None

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """Alive: the process answers and reaches its database (the container's health)."""
        error = await database_answers()
        if error is not None:
            return JSONResponse({"status": "unavailable", "error": error}, 503)
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Ready to serve: alive, and the database is at the code's schema revision."""
        error = await database_answers()
        if error is None:
            try:  # Alembic's check is synchronous and opens its own connection: off the loop.
                if not await asyncio.to_thread(is_current, settings.database_url):
                    error = "migrations not current: run `mfa migrate`"
            except Exception as exc:  # the database went away between the two checks
                error = type(exc).__name__
        if error is not None:
            return JSONResponse({"status": "unavailable", "error": error}, 503)
        return JSONResponse({"status": "ok"})

    return app
