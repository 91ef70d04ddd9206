"""Authentication at the HTTP edge: ``POST /auth/token`` and the caller of each request.

The token endpoint follows OAuth 2.0's client-credentials grant (RFC 6749 §4.4, §5), as the
PACT Technical Specifications ask of data owners: a form-encoded body with
``grant_type=client_credentials`` and the client's id and secret, either in the body or as
HTTP Basic credentials; the answer is ``{access_token, token_type, expires_in}`` with
``Cache-Control: no-store``. Requests then send ``Authorization: Bearer <token>`` or
``X-API-Key: <client_id>.<secret>``; without either, nothing but ``/healthz`` and ``/readyz``
is served (401).
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mfa import auth
from mfa.access import Caller, Role
from mfa.errors import AuthenticationError
from mfa.settings import Settings

API_KEY_HEADER = "x-api-key"

IDE_PAGE = Caller(subject="graphiql page (unauthenticated)", role=Role.PARTNER, park_id=0)
"""The caller of a GET that only renders the GraphiQL page: that executes no operation, and a
partner of no park (id 0 is never issued) could see nothing if it did."""


def _is_ide_page(request: Request, settings: Settings) -> bool:
    return (
        settings.graphiql
        and request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and "query" not in request.query_params
    )


async def authenticate(
    request: Request, factory: async_sessionmaker[AsyncSession], settings: Settings
) -> Caller:
    """The caller behind a request's credentials; HTTP 401 when there are none or bad ones."""
    header = request.headers.get("authorization", "")
    api_key = request.headers.get(API_KEY_HEADER)
    scheme, _, token = header.partition(" ")
    try:
        if scheme.lower() == "bearer" and token.strip():
            async with factory() as session:
                return await auth.caller_from_token(session, token.strip(), settings=settings)
        if api_key:
            async with factory() as session:
                return await auth.caller_from_api_key(session, api_key.strip())
    except AuthenticationError as exc:
        raise HTTPException(
            401, exc.message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from exc
    if _is_ide_page(request, settings):
        return IDE_PAGE
    raise HTTPException(
        401,
        "authentication required: send 'Authorization: Bearer <token>' (POST /auth/token) or "
        "'X-API-Key: <client_id>.<secret>'",
        headers={"WWW-Authenticate": 'Bearer realm="circular-mfa"'},
    )


def _oauth_error(status: int, error: str, description: str, *, basic: bool) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="circular-mfa"' if basic else "Bearer"
    return JSONResponse({"error": error, "error_description": description}, status, headers)


def _basic(header: str) -> tuple[str, str] | None:
    """(client id, secret) of an HTTP Basic header; each is form-urlencoded (RFC 6749 §2.3.1)."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (unquote(client_id), unquote(secret)) if sep else None


def install_token_endpoint(
    app: FastAPI, factory: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    @app.post("/auth/token", include_in_schema=False)
    async def token(request: Request) -> JSONResponse:
        """OAuth 2.0 client-credentials token endpoint (RFC 6749 §4.4)."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/x-www-form-urlencoded":
            return _oauth_error(
                400,
                "invalid_request",
                "send the parameters form-encoded (application/x-www-form-urlencoded)",
                basic=False,
            )
        form = await request.form()
        grant = form.get("grant_type")
        basic = _basic(request.headers.get("authorization", ""))
        if grant != "client_credentials":
            return _oauth_error(
                400,
                "unsupported_grant_type" if grant else "invalid_request",
                "grant_type must be client_credentials",
                basic=basic is not None,
            )
        body_id, body_secret = form.get("client_id"), form.get("client_secret")
        if basic is not None and (body_id or body_secret):
            return _oauth_error(
                400,
                "invalid_request",
                "send the client credentials once: HTTP Basic or the body, not both",
                basic=True,
            )
        if basic is None:
            if not isinstance(body_id, str) or not isinstance(body_secret, str):
                return _oauth_error(
                    401, "invalid_client", "client_id and client_secret are required", basic=True
                )
            basic = (body_id, body_secret)
        try:
            async with factory() as session:
                access_token, expires_in = await auth.exchange_credentials(
                    session, basic[0], basic[1], settings=settings
                )
        except AuthenticationError as exc:
            return _oauth_error(401, "invalid_client", exc.message, basic=True)
        return JSONResponse(
            {"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in},
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )
