"""HTTP downloads of exports (plain GET, not GraphQL: files are what partners' tools read).

* ``GET /exports/{kind}.{format}?park=CODE&start=YYYY-MM-DD&end=YYYY-MM-DD``: a tidy table
  (``flows``, ``balances``, ``indicators``, ``footprints``) as ``csv``, ``xlsx`` or ``parquet``;
* ``GET /exports/pact/footprints?park=…&start=…&end=…[&enterprise=CODE&material=CODE]``:
  WBCSD PACT ProductFootprints as JSON (``mfa.exports.pact``).

Each answers with the media type and a ``Content-Disposition: attachment`` filename. A refused
argument is 422 (404 for a park, enterprise or material that does not exist, 403 for what the
caller may not read: ``mfa.access``; 401 without credentials, as ``/graphql``) with
``{"errors": [{"field", "message", "code"}]}``, ``field`` being the query parameter (``kind`` and
``format`` for the path).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lca.footprint import FootprintCache
from mfa.access import Caller
from mfa.errors import MfaError, NotFoundError, PermissionDeniedError
from mfa.exports.service import PACT, ExportFile, argument_of, export_file
from mfa.settings import Settings

_STATUS: dict[type[MfaError], int] = {NotFoundError: 404, PermissionDeniedError: 403}


def _refusal(error: MfaError) -> JSONResponse:
    status = _STATUS.get(type(error), 422)
    body = {"errors": [{"field": argument_of(error), "message": error.message, "code": error.code}]}
    return JSONResponse(body, status_code=status)


def _download(file: ExportFile) -> Response:
    return Response(
        file.content,
        media_type=file.media_type,
        headers={"Content-Disposition": f'attachment; filename="{file.filename}"'},
    )


def exports_router(
    *,
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    footprints: FootprintCache,
    caller_for: Callable[[Request], Awaitable[Caller]],
) -> APIRouter:
    """The ``/exports`` routes; ``caller_for`` authenticates who asks (``mfa.api.auth``)."""
    router = APIRouter(prefix="/exports", tags=["exports"])

    async def answer(
        request: Request,
        *,
        kind: str,
        fmt: str | None,
        park: str,
        start: str,
        end: str,
        enterprise: str | None = None,
        material: str | None = None,
    ) -> Response:
        caller = await caller_for(request)
        try:
            async with factory() as session:
                file = await export_file(
                    session,
                    kind=kind,
                    fmt=fmt,
                    park=park,
                    start=start,
                    end=end,
                    enterprise=enterprise,
                    material=material,
                    caller=caller,
                    tolerance=settings.balance_tolerance,
                    cache=footprints,
                    run=asyncio.to_thread,
                    created=datetime.now(UTC),
                )
        except MfaError as exc:
            return _refusal(exc)
        return _download(file)

    @router.get("/pact/footprints")
    async def pact_footprints(
        request: Request,
        park: str,
        start: str,
        end: str,
        enterprise: str | None = None,
        material: str | None = None,
    ) -> Response:
        """PACT ProductFootprints of the park's products in [start, end] (or of one)."""
        return await answer(
            request,
            kind="pact",
            fmt="json",
            park=park,
            start=start,
            end=end,
            enterprise=enterprise,
            material=material,
        )

    @router.get("/{name}")
    async def table(request: Request, name: str, park: str, start: str, end: str) -> Response:
        """A tidy table: ``name`` is ``{kind}.{format}``, e.g. ``flows.csv``."""
        kind, dot, fmt = name.partition(".")
        if not dot:
            error = MfaError(f"{name!r} names no format: write e.g. {kind}.csv", field=("format",))
            return _refusal(error)
        if kind == PACT:
            error = MfaError("PACT footprints are at /exports/pact/footprints", field=("kind",))
            return _refusal(error)
        return await answer(request, kind=kind, fmt=fmt, park=park, start=start, end=end)

    return router
