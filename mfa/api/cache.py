"""A response cache for GraphQL queries that cannot serve a stale answer.

A query's response is stored under the key

    sha256(document, operation name, variables, the caller's scope, the versions it reads)

where the versions are those of ``park_version`` (see ``mfa.models.version``: any write in a
park advances its row, any write to a shared table the catalogue's row 0). The versions are
read from the database on every request, *before* the query runs, so an entry is only ever
found again while none of the data it read has changed, and the data under a key is at least
as new as the versions in it. Nothing is invalidated by hand: a write changes the key.

Which parks a response reads is decided from the document alone (``reads_of``):

* a root field that is confined to the parks named by its arguments (``flows`` filtered by
  park or enterprise, ``park(id:)``, ``enterprises(park:)``, ``node(id:)``), whose selections
  stay on objects of those parks (a flow's ends, material, confirmation, reversal; a node's
  park; a park's enterprises) reads those parks;
* anything else (root lists across parks, a batch, fields added later) reads every park: the
  key then holds every park's version.

Only queries are cached, and only responses without errors. The caller is part of the key
with every field of ``Caller`` (its whole scope), so two scopes never share an entry.

Also here, since it rewrites the same requests: automatic persisted queries (Apollo's APQ:
``extensions.persistedQuery.sha256Hash`` instead of the document; ``PersistedQueryNotFound``
asks the client to send both once) and ETag / ``If-None-Match`` on GET (304).

Entries live in process (a bounded LRU) or, with ``MFA_CACHE_URL=redis://...``, in Redis,
shared by every worker. Entries of old versions are never read again: the LRU drops them as
it fills, Redis after ``cache_ttl`` seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

import orjson
import sqlalchemy as sa
from graphql.type.definition import GraphQLInterfaceType
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    parse,
    value_from_ast_untyped,
)
from mfa.access import Caller
from mfa.api.ids import decode_global_id
from mfa.models.version import CATALOGUE
from mfa.settings import Settings

# --- which parks a document reads ------------------------------------------------------------

_CONFINED_ROOTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "flows": (("filter", "park"), ("filter", "enterprise")),
    "park": (("id",),),
    "enterprises": (("park",),),
    "node": (("id",),),
}
"""Root fields whose result lies in the parks of the ids at these argument paths."""

_CONFINED_FIELDS: dict[str, frozenset[str]] = {
    "Flow": frozenset(
        {"source", "target", "material", "reportingParty", "confirmation", "reverses", "reversedBy"}
    ),
    "FlowConfirmation": frozenset({"reportingParty"}),
    "FlowEndpoint": frozenset({"park"}),
    "Enterprise": frozenset({"park"}),
    "BoundaryNode": frozenset({"park"}),
    "Park": frozenset({"enterprises", "boundaryNodes"}),
    "Material": frozenset({"brightwayActivity"}),
}
"""Object-valued fields that stay in their parent's park (a flow's ends are in its park,
materials are the catalogue's). Connections' ``edges``, ``nodes``, ``node``, ``pageInfo`` too."""

_CONNECTION_FIELDS = frozenset({"edges", "nodes", "node", "pageInfo"})

_VOLATILE_ROOTS = frozenset({"importJob"})
_VOLATILE_TYPES = frozenset({"ImportJob"})
"""What reads state kept outside the database, which no version tracks: a running import's
progress lives in the server process. Responses that touch it are never cached."""


@dataclass(frozen=True, slots=True)
class Reads:
    """What a response depends on: these parks, nodes' and flows' parks, or everything."""

    everything: bool = False
    parks: frozenset[int] = frozenset()
    nodes: frozenset[int] = frozenset()
    flows: frozenset[int] = frozenset()


EVERYTHING = Reads(everything=True)


@dataclass(frozen=True, slots=True)
class Operation:
    document: DocumentNode
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode] = field(default_factory=dict)


@lru_cache(maxsize=512)
def _parse(query: str) -> DocumentNode | None:
    try:
        return parse(query)
    except GraphQLError:
        return None


def operation_of(query: str, operation_name: str | None) -> Operation | None:
    """The operation a request runs, or None when the server will refuse it anyway."""
    document = _parse(query)
    if document is None:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1:
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return Operation(document, operations[0], fragments)


def _argument(node: FieldNode, path: tuple[str, ...], variables: dict[str, Any]) -> Any:
    arguments = {a.name.value: a.value for a in node.arguments or ()}
    if path[0] not in arguments:
        return None
    value = value_from_ast_untyped(arguments[path[0]], variables)
    for key in path[1:]:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _stays_confined(
    schema: GraphQLSchema,
    parent: GraphQLObjectType | GraphQLInterfaceType,
    selections: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
) -> bool:
    """Every field below is a leaf or a field in ``_CONFINED_FIELDS`` / a connection's."""
    if selections is None:
        return True
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            name = selection.name.value
            if name.startswith("__"):
                continue
            definition = parent.fields.get(name)
            if definition is None:
                return False
            target = get_named_type(definition.type)
            if is_leaf_type(target):
                continue
            allowed = _CONFINED_FIELDS.get(parent.name, frozenset())
            if name not in allowed and not (
                parent.name.endswith(("Connection", "Edge")) and name in _CONNECTION_FIELDS
            ):
                return False
            if not isinstance(target, GraphQLObjectType | GraphQLInterfaceType):
                return False  # unions are not used on confined paths
            if not _stays_confined(schema, target, selection.selection_set, fragments):
                return False
        else:
            condition: NamedTypeNode | None
            if isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is None:
                    return False
                condition, inner = fragment.type_condition, fragment.selection_set
            else:
                assert isinstance(selection, InlineFragmentNode)
                condition, inner = selection.type_condition, selection.selection_set
            narrowed = schema.get_type(condition.name.value) if condition else parent
            if not isinstance(narrowed, GraphQLObjectType | GraphQLInterfaceType):
                return False
            if not _stays_confined(schema, narrowed, inner, fragments):
                return False
    return True


def is_volatile(operation: Operation, variables: dict[str, Any]) -> bool:
    """Whether the response may read ``_VOLATILE_ROOTS`` / ``_VOLATILE_TYPES`` (or cannot be
    told without resolving fragments at the root)."""
    for selection in operation.operation.selection_set.selections:
        if not isinstance(selection, FieldNode):
            return True
        if selection.name.value in _VOLATILE_ROOTS:
            return True
        if selection.name.value == "node":
            value = _argument(selection, ("id",), variables)
            decoded = decode_global_id(value) if isinstance(value, str) else None
            if decoded is None or decoded[0] in _VOLATILE_TYPES:
                return True
    return False


def reads_of(schema: GraphQLSchema, operation: Operation, variables: dict[str, Any]) -> Reads:
    """The parks a query's response can depend on (see the module's docstring)."""
    query_type = schema.query_type
    if query_type is None:
        return EVERYTHING
    parks: set[int] = set()
    nodes: set[int] = set()
    flows: set[int] = set()
    for selection in operation.operation.selection_set.selections:
        if not isinstance(selection, FieldNode):
            return EVERYTHING  # fragments at the root: not worth resolving
        name = selection.name.value
        if name == "__typename":
            continue
        paths = _CONFINED_ROOTS.get(name)
        definition = query_type.fields.get(name)
        if paths is None or definition is None:
            return EVERYTHING
        named = 0
        for path in paths:
            value = _argument(selection, path, variables)
            if value is None:
                continue
            decoded = decode_global_id(value) if isinstance(value, str) else None
            if decoded is None:
                return EVERYTHING
            type_name, pk = decoded
            if type_name == "Park":
                parks.add(pk)
            elif type_name in ("Enterprise", "BoundaryNode"):
                nodes.add(pk)
            elif type_name == "Flow":
                flows.add(pk)
            elif type_name != "Material":  # materials are the catalogue's, in every key
                return EVERYTHING
            named += 1
        if named == 0 and name != "node":
            return EVERYTHING  # a root list over every park
        target = get_named_type(definition.type)
        if not is_leaf_type(target):
            if not isinstance(target, GraphQLObjectType | GraphQLInterfaceType):
                return EVERYTHING
            if not _stays_confined(schema, target, selection.selection_set, operation.fragments):
                return EVERYTHING
    return Reads(parks=frozenset(parks), nodes=frozenset(nodes), flows=frozenset(flows))


async def versions_of(engine: AsyncEngine, reads: Reads) -> tuple[tuple[int, int], ...]:
    """``(park, version)`` pairs of the parks ``reads`` names, the catalogue always included,
    in one statement. A named node or flow that does not exist yet cannot be placed in a park:
    then every park's version is returned, so its creation changes the key all the same."""
    async with engine.connect() as connection:
        if reads.everything:
            return await _all_versions(connection)
        found = (
            await connection.execute(
                sa.text(
                    "SELECT 'n', id, park_id FROM park_node WHERE id IN :nodes "
                    "UNION ALL SELECT 'f', id, park_id FROM flow WHERE id IN :flows "
                    "UNION ALL SELECT 'v', park_id, version FROM park_version WHERE "
                    "park_id IN :parks OR park_id IN (SELECT park_id FROM park_node WHERE id "
                    "IN :nodes) OR park_id IN (SELECT park_id FROM flow WHERE id IN :flows)"
                ).bindparams(
                    sa.bindparam("nodes", expanding=True),
                    sa.bindparam("flows", expanding=True),
                    sa.bindparam("parks", expanding=True),
                ),
                {
                    "nodes": sorted(reads.nodes) or [-1],
                    "flows": sorted(reads.flows) or [-1],
                    "parks": sorted(reads.parks | {CATALOGUE}),
                },
            )
        ).all()
        placed = {(kind, pk) for kind, pk, _ in found if kind != "v"}
        if len(placed) != len(reads.nodes) + len(reads.flows):
            return await _all_versions(connection)
    parks = reads.parks | {CATALOGUE} | {park for kind, _, park in found if kind != "v"}
    known = {pk: version for kind, pk, version in found if kind == "v"}
    return tuple((park, known.get(park, 0)) for park in sorted(parks))


async def _all_versions(connection: Any) -> tuple[tuple[int, int], ...]:
    rows = await connection.execute(
        sa.text("SELECT park_id, version FROM park_version ORDER BY park_id")
    )
    versions = {park: version for park, version in rows}
    versions.setdefault(CATALOGUE, 0)
    return tuple(sorted(versions.items()))


def scope_of(caller: Caller) -> str:
    """Every field of the caller, canonically: equal scopes give equal text, and only they."""

    def canonical(value: Any) -> Any:
        if isinstance(value, frozenset | set):
            return sorted((canonical(v) for v in value), key=repr)
        if isinstance(value, tuple | list):
            return [canonical(v) for v in value]
        return value

    fields = {f.name: canonical(getattr(caller, f.name)) for f in dataclasses.fields(caller)}
    return json.dumps(fields, sort_keys=True, default=str)


def cache_key(
    query: str,
    operation_name: str | None,
    variables: dict[str, Any],
    caller: Caller,
    versions: Iterable[tuple[int, int]],
    *,
    accept: str = "",
) -> str:
    """The entry of one response: the response's media type follows ``Accept``."""
    text = json.dumps(
        [query, operation_name, variables, scope_of(caller), list(versions), accept],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


# --- where entries live ----------------------------------------------------------------------


class Backend(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes) -> None: ...

    async def close(self) -> None: ...


class MemoryBackend:
    """A bounded LRU of this process."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[str, bytes] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        value = self.entries.get(key)
        if value is not None:
            self.entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes) -> None:
        self.entries[key] = value
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)

    async def close(self) -> None:
        self.entries.clear()


class RedisBackend:
    """Redis, shared by every worker; entries expire ``ttl`` seconds after they were stored."""

    def __init__(self, url: str, *, prefix: str, ttl: int) -> None:
        import redis.asyncio as redis

        self.client = redis.Redis.from_url(url)
        self.prefix = prefix
        self.ttl = ttl

    async def get(self, key: str) -> bytes | None:
        value = await self.client.get(self.prefix + key)
        return value if isinstance(value, bytes) or value is None else value.encode()

    async def set(self, key: str, value: bytes) -> None:
        await self.client.set(self.prefix + key, value, ex=self.ttl)

    async def close(self) -> None:
        await self.client.aclose()


def backend_for(settings: Settings) -> Backend:
    if settings.cache_url:
        return RedisBackend(
            settings.cache_url, prefix=settings.cache_prefix, ttl=settings.cache_ttl
        )
    return MemoryBackend(settings.cache_max_entries)


# --- the ASGI middleware ---------------------------------------------------------------------

PERSISTED_QUERY_NOT_FOUND = {
    "errors": [
        {
            "message": "PersistedQueryNotFound",
            "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
        }
    ]
}


def _error(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


@dataclass(slots=True)
class _Request:
    """The GraphQL parameters of one HTTP request, from its JSON body or its query string."""

    method: str
    query: str | None
    variables: dict[str, Any]
    operation_name: str | None
    extensions: dict[str, Any]
    rewritten: bool = False


def _json_object(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if value is None:
        return {}
    return value if isinstance(value, dict) else None


class ResponseCache:
    """ASGI middleware in front of the GraphQL endpoint (``path``); everything else passes."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str,
        schema: GraphQLSchema,
        engine: AsyncEngine,
        backend: Backend,
        caller_for: Callable[[Request], Caller | Awaitable[Caller]],
        enabled: bool,
    ) -> None:
        self.app = app
        self.path = path.rstrip("/")
        self.schema = schema
        self.engine = engine
        self.backend = backend
        self.caller_for = caller_for
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        body = b""
        if scope["method"] == "POST":
            if not headers.get("content-type", "").startswith("application/json"):
                await self.app(scope, receive, send)
                return
            body = await _read_body(receive)
            request = self._from_body(body)
        elif scope["method"] == "GET":
            request = self._from_query_string(scope["query_string"])
        else:
            request = None
        if request is None:
            await self.app(scope, _replay(body), send)
            return

        refused = await self._persisted(request)
        if refused is not None:
            await _respond(send, 200, orjson.dumps(refused))
            return
        if request.rewritten:
            scope, body = _rewrite(scope, request, body)

        key = await self._key(scope, request, headers) if self.enabled else None
        if key is None:
            await self.app(scope, _replay(body), send)
            return
        cached = await self.backend.get(key)
        if cached is not None:
            media_type, _, response = cached.partition(b"\n")
            await self._answer(send, request, headers, media_type, response, hit=True)
            return
        status, response_headers, response = await _capture(self.app, scope, _replay(body))
        # A key "errors" (or, conservatively, a string "errors" in the data): not stored.
        if status == 200 and b'"errors"' not in response:
            media_type = dict(response_headers).get(b"content-type", b"application/json")
            await self.backend.set(key, media_type + b"\n" + response)
            await self._answer(send, request, headers, media_type, response, hit=False)
            return
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": response})

    def _from_body(self, body: bytes) -> _Request | None:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(payload, dict):
            return None  # batches pass through uncached
        variables = _json_object(payload.get("variables"))
        extensions = _json_object(payload.get("extensions"))
        query = payload.get("query")
        name = payload.get("operationName")
        if variables is None or extensions is None or not isinstance(query, str | None):
            return None
        return _Request(
            "POST", query, variables, name if isinstance(name, str) else None, extensions
        )

    def _from_query_string(self, raw: bytes) -> _Request | None:
        params = dict(parse_qsl(raw.decode("latin-1")))
        variables = _json_object(params.get("variables"))
        extensions = _json_object(params.get("extensions"))
        if variables is None or extensions is None:
            return None
        return _Request(
            "GET", params.get("query"), variables, params.get("operationName"), extensions
        )

    async def _persisted(self, request: _Request) -> dict[str, Any] | None:
        """Resolve an APQ hash to its document (or store a new one); an error body if not."""
        persisted = request.extensions.get("persistedQuery")
        if not isinstance(persisted, dict):
            return None
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str) or persisted.get("version", 1) != 1:
            return _error("persistedQuery needs version 1 and a sha256Hash", "BAD_REQUEST")
        if request.query is not None:
            if hashlib.sha256(request.query.encode()).hexdigest() != digest:
                return _error("provided sha does not match query", "PERSISTED_QUERY_HASH_MISMATCH")
            await self.backend.set(f"apq:{digest}", request.query.encode())
        else:
            stored = await self.backend.get(f"apq:{digest}")
            if stored is None:
                return PERSISTED_QUERY_NOT_FOUND
            request.query = stored.decode()
        request.extensions = {k: v for k, v in request.extensions.items() if k != "persistedQuery"}
        request.rewritten = True
        return None

    async def _key(self, scope: Scope, request: _Request, headers: dict[str, str]) -> str | None:
        """The cache key of a query the caller may run, or None: not cacheable."""
        if request.query is None:
            return None
        operation = operation_of(request.query, request.operation_name)
        if operation is None or operation.operation.operation is not OperationType.QUERY:
            return None
        if is_volatile(operation, request.variables):
            return None
        try:
            caller = self.caller_for(Request(scope))
            if not isinstance(caller, Caller):
                caller = await caller
        except Exception:  # no identity: the endpoint itself answers with the right error
            return None
        versions = await versions_of(
            self.engine, reads_of(self.schema, operation, request.variables)
        )
        return cache_key(
            request.query,
            request.operation_name,
            request.variables,
            caller,
            versions,
            accept=headers.get("accept", ""),
        )

    async def _answer(
        self,
        send: Send,
        request: _Request,
        headers: dict[str, str],
        media_type: bytes,
        body: bytes,
        *,
        hit: bool,
    ) -> None:
        extra = [(b"x-cache", b"hit" if hit else b"miss")]
        if request.method == "GET":
            etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
            extra += [(b"etag", etag.encode()), (b"cache-control", b"private, no-cache")]
            wanted = {
                t.strip().removeprefix("W/") for t in headers.get("if-none-match", "").split(",")
            }
            if etag in wanted or "*" in wanted:
                await send({"type": "http.response.start", "status": 304, "headers": extra})
                await send({"type": "http.response.body", "body": b""})
                return
        await _respond(send, 200, body, extra, media_type=media_type)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _rewrite(scope: Scope, request: _Request, body: bytes) -> tuple[Scope, bytes]:
    """The request with the persisted document in place of its hash."""
    params: dict[str, Any] = {"query": request.query}
    if request.variables:
        params["variables"] = request.variables
    if request.operation_name is not None:
        params["operationName"] = request.operation_name
    if request.extensions:
        params["extensions"] = request.extensions
    if request.method == "GET":
        encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        return {**scope, "query_string": urlencode(encoded).encode()}, body
    body = orjson.dumps(params)
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    return {**scope, "headers": headers}, body


async def _capture(app: ASGIApp, scope: Scope, receive: Receive) -> tuple[int, list[Any], bytes]:
    status = 500
    headers: list[Any] = []
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, headers, b"".join(chunks)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
    *,
    media_type: bytes = b"application/json",
) -> None:
    headers = [
        (b"content-type", media_type),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install_cache(
    app: Any,
    *,
    settings: Settings,
    schema: Any,
    engine: AsyncEngine,
    caller_for: Callable[[Request], Caller | Awaitable[Caller]],
) -> None:
    """Put the cache (and APQ, and ETags) in front of ``/graphql``; ``app.state.response_cache``
    is its backend. With ``response_cache`` off, APQ still works and nothing is cached."""
    backend = backend_for(settings)
    app.state.response_cache = backend
    app.add_middleware(
        ResponseCache,
        path="/graphql",
        schema=schema._schema,
        engine=engine,
        backend=backend,
        caller_for=caller_for,
        enabled=settings.response_cache,
    )
