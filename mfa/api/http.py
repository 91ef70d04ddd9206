"""GraphQL over HTTP: media types, status codes, CSRF, body size, timeout and request ids.

Follows the GraphQL-over-HTTP draft (https://graphql.github.io/graphql-over-http/draft/):

* **Response media type.** ``application/graphql-response+json`` when the ``Accept`` header
  prefers it; ``application/json`` when it names that, ``*/*``, or nothing (the draft's legacy
  default). An ``Accept`` naming neither is refused with 406.
* **Status codes.** With ``application/json``, every well-formed request is answered 200,
  whatever its GraphQL errors. With ``application/graphql-response+json``, a request that
  never executed has no ``data`` entry and a 4xx status: 400 when the document does not parse,
  422 when it fails validation (limits included). Either way: 400 for a body that is not
  JSON or parameters of the wrong type, 405 for a mutation over GET, 415 for a POST whose
  body is not ``application/json``, 413 for a body above ``max_request_bytes``, and 503 with
  ``Retry-After`` when the database is unreachable or the operation ran out of time.
* **CSRF.** A browser sends a cross-site "simple request" without a CORS preflight; such a
  request is a POST with a form or text body, or a GET. POSTs must be ``application/json``
  (415 otherwise), which no simple request can be; a GET query must carry a header no simple
  request can carry (``GraphQL-Require-Preflight``, or Apollo's equivalents), else 400.
  Mutations over GET are refused with 405 in any case. This is Apollo Server's CSRF
  prevention; strawberry has none of its own.
* **Request ids.** Every response carries ``X-Request-Id`` (the client's, when it sent a
  sane one); masked errors quote it and the log holds the traceback under it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from typing import Any

from cross_web import HTTPException
from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from graphql import GraphQLError, GraphQLSyntaxError, OperationType, get_operation_ast, parse
from mfa.api.errors import MASKED, is_unavailable, request_id, set_request_id
from mfa.settings import Settings

log = logging.getLogger("mfa.api")

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
PREFLIGHT_HEADERS = (
    "graphql-require-preflight",
    "apollo-require-preflight",
    "x-apollo-operation-name",
)
RETRY_AFTER_SECONDS = "1"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_STATE = "graphql_over_http"


def negotiate(accept: str | None) -> str | None:
    """The response media type for an ``Accept`` header, or ``None`` when none is acceptable.

    Highest q-value wins; on a tie, ``application/graphql-response+json`` (named) beats
    ``application/json``, and both beat wildcards, which mean ``application/json``.
    """
    if accept is None or not accept.strip():
        return JSON
    best: tuple[float, int, str] | None = None
    for item in accept.split(","):
        kind, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        kind = kind.lower()
        if q <= 0:
            continue
        if kind == GRAPHQL_RESPONSE:
            candidate = (q, 2, GRAPHQL_RESPONSE)
        elif kind == JSON:
            candidate = (q, 1, JSON)
        elif kind in ("*/*", "application/*"):
            candidate = (q, 0, JSON)
        else:
            continue
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best[2] if best else None


def _has_preflight_header(request: Request) -> bool:
    return any(name in request.headers for name in PREFLIGHT_HEADERS)


def _error_body(message: str) -> bytes:
    return json.dumps({"errors": [{"message": message}]}).encode()


class GraphQLOverHTTP:
    """Mixin for strawberry's FastAPI ``GraphQLRouter``: put it first among the bases."""

    async def run(self, request: Any, context: Any = None, root_value: Any = None) -> Any:
        if request.scope["type"] != "http":
            return await super().run(request, context=context, root_value=root_value)  # type: ignore[misc]
        media_type = negotiate(request.headers.get("accept"))
        wants_ide = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if not wants_ide:
            if media_type is None:
                return Response(
                    f"none of the Accept header's media types is served: accept {JSON} or "
                    f"{GRAPHQL_RESPONSE}",
                    status_code=406,
                    media_type="text/plain",
                )
            if request.method == "POST":
                content_type = request.headers.get("content-type", "")
                essence = content_type.split(";")[0].strip().lower()
                if essence != JSON:
                    return self._error(
                        415, f"send the request body as {JSON}, not {content_type!r}", media_type
                    )
        setattr(request.state, _STATE, {"media_type": media_type or JSON})
        try:
            response = await super().run(request, context=context, root_value=root_value)  # type: ignore[misc]
        except HTTPException as exc:
            response = self._error(exc.status_code, exc.reason, media_type or JSON)
        state = getattr(request.state, _STATE)
        if isinstance(response, Response) and response.media_type == JSON:
            if state.get("status"):
                response.status_code = state["status"]
            if state.get("retry"):
                response.headers["Retry-After"] = RETRY_AFTER_SECONDS
            response.headers["content-type"] = f"{state['media_type']}; charset=utf-8"
        return response

    def _error(self, status: int, message: str, media_type: str | None) -> Response:
        return Response(_error_body(message), status_code=status, media_type=media_type or JSON)

    async def execute_single(self, **kwargs: Any) -> ExecutionResult:
        request: Request = kwargs["request"]
        adapter = kwargs["request_adapter"]
        if adapter.method == "GET" and not _has_preflight_header(request):
            data = kwargs["request_data"]
            try:
                operation = get_operation_ast(parse(data.query or ""), data.operation_name)
            except GraphQLError:
                operation = None
            # Mutations fall through to the 405; unparsable documents to the 400.
            if operation is not None and operation.operation is OperationType.QUERY:
                raise HTTPException(
                    400,
                    "a query over GET must carry a GraphQL-Require-Preflight header (CSRF "
                    "protection), or be sent as a POST with an application/json body",
                )
        timeout = kwargs["context"].settings.execution_timeout
        try:
            async with asyncio.timeout(timeout):
                return await super().execute_single(**kwargs)  # type: ignore[misc,no-any-return]
        except TimeoutError:
            current = request_id()
            log.warning("operation stopped after %s s (request %s)", timeout, current)
            return ExecutionResult(
                data=None,
                errors=[
                    GraphQLError(
                        f"the operation did not finish within {timeout:g} s and was stopped: "
                        "ask for less (smaller pages, fewer footprints) or retry later",
                        extensions={"code": "TIMEOUT", "requestId": current},
                    )
                ],
            )

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        body = process_result(result)
        state = getattr(request.state, _STATE, None)
        if state is None:
            return body
        codes = {(e.extensions or {}).get("code") for e in result.errors or ()}
        if codes & {"UNAVAILABLE", "TIMEOUT"}:
            state.update(status=503, retry=True)
        elif state["media_type"] == GRAPHQL_RESPONSE and isinstance(result, PreExecutionError):
            syntax = any(isinstance(e, GraphQLSyntaxError) for e in result.errors or ())
            state["status"] = 400 if syntax else 422
            body.pop("data", None)
        return body


class RequestGuard:
    """ASGI middleware: a request id for every HTTP request, and the body size limit (413).

    The limit is checked against ``Content-Length`` before anything is read, and again while
    the body streams in (a chunked upload has no length). Paths under a prefix of
    ``uploads`` (file uploads such as ``POST /imports``) take that prefix's larger limit.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, uploads: tuple[tuple[str, int], ...] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = uploads

    def _limit(self, path: str) -> int:
        return next((n for prefix, n in self.uploads if path.startswith(prefix)), self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        current = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        set_request_id(current)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", current.encode()),
                ]
            await send(message)

        limit = self._limit(scope["path"])
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await self._too_large(send_with_id, limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send_with_id)
        except _BodyTooLarge:
            if started:
                raise
            await self._too_large(send_with_id, limit)
        except Exception as exc:  # outside GraphQL execution, e.g. authentication's lookup
            if started:
                raise
            unavailable = is_unavailable(exc)
            log.error(
                "%s error (request %s)",
                "database unavailable" if unavailable else "unexpected",
                current,
                exc_info=exc,
            )
            code, status = ("UNAVAILABLE", 503) if unavailable else ("INTERNAL", 500)
            error = {"message": MASKED[code], "extensions": {"code": code, "requestId": current}}
            retry = [(b"retry-after", RETRY_AFTER_SECONDS.encode())] if unavailable else []
            await _send_json(send_with_id, status, {"errors": [error]}, retry)
        finally:
            set_request_id(None)

    async def _too_large(self, send: Send, limit: int) -> None:
        message = f"the request body is larger than {limit} bytes"
        await _send_json(send, 413, {"errors": [{"message": message}]})


async def _send_json(
    send: Send, status: int, body: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    content = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", JSON.encode()),
                (b"content-length", str(len(content)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


class _BodyTooLarge(Exception):
    pass


def install(app: FastAPI, settings: Settings) -> None:
    """The request guard, and CORS for the configured origins (none: CORS stays off)."""
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "x-api-key", *PREFLIGHT_HEADERS],
            expose_headers=["x-request-id"],
            max_age=600,
        )
    app.add_middleware(
        RequestGuard,
        max_bytes=settings.max_request_bytes,
        uploads=(("/imports", settings.import_max_bytes),),
    )
